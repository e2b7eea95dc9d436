"""Shared fixtures: an isolated environment for every test, the project's test server
on 127.0.0.1, and a runner for the real `llmcli` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Optional

import pytest

from llmcli.testing import MockOpenAIServer

API_KEY = "sk-test-0123456789abcdefWXYZ"   # long enough to be masked as sk-...WXYZ
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No OPENAI_*/LLMCLI_* from the developer's shell; config dir under tmp_path."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "LLMCLI_")) or name in ("NO_COLOR", "HTTP_PROXY",
                                                                "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # the usage log (docs/cost.md) too: never the developer's own
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    monkeypatch.delenv("LLMCLI_USAGE_DB", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return config_home / "llmcli"


@pytest.fixture(scope="session")
def server() -> Iterator[MockOpenAIServer]:
    """One test server for the session; tests must not change its config."""
    with MockOpenAIServer(api_key=API_KEY) as srv:
        yield srv


@pytest.fixture
def api_env(server: MockOpenAIServer) -> dict[str, str]:
    """Environment that points llmcli at the test server."""
    env = dict(os.environ)
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=API_KEY, LLMCLI_MODEL="test-model")
    return env


def run_cli(*args: str, env: Optional[dict[str, str]] = None, input: Optional[str] = None,
            timeout: float = 30, stdin: Optional[int] = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process and capture stdout and stderr apart."""
    kwargs: dict = {"input": input} if input is not None else {
        "stdin": subprocess.DEVNULL if stdin is None else stdin}
    return subprocess.run([sys.executable, "-m", "llmcli", *args], capture_output=True,
                          text=True, env=env if env is not None else dict(os.environ),
                          timeout=timeout, cwd=ROOT, **kwargs)


@pytest.fixture
def cli(api_env: dict[str, str]):
    """``cli("chat", "hi")`` runs llmcli against the test server."""
    def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("env", api_env)
        return run_cli(*args, **kwargs)
    return run
