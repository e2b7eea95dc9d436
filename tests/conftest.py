"""Shared fixtures: an isolated environment for every test, the project's test server
on 127.0.0.1, and the `cli` runner (tests/harness.py: in-process, or a real process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from llmcli.testing import MockOpenAIServer

from .harness import ROOT, run_cli

__all__ = ["API_KEY", "ROOT", "run_cli"]

API_KEY = "sk-test-0123456789abcdefWXYZ"   # long enough to be masked as sk-...WXYZ


_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "", None}
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Tests never touch the internet: a name that is not this machine is not even
    looked up (the error is the one a failed lookup gives, so behaviour is the same)."""
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOCAL_HOSTS and not str(name).startswith("127."):
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no outside host ({name})")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_outside_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs (most CLI tests) cannot reach a real provider by mistake."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only)


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


@pytest.fixture
def cli(api_env: dict[str, str]):
    """``cli("chat", "hi")`` runs llmcli against the test server, in-process
    (``process=True``: in a child process; see tests/harness.py)."""
    def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("env", api_env)
        return run_cli(*args, **kwargs)
    return run


# -- How the CLI tests ran: in-process or in a child process (the summary line) --------

_RUNS: dict[str, set[str]] = {}


@pytest.fixture(autouse=True)
def _count_cli_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Note, per test, whether it ran llmcli in-process (the harness) or started a
    child Python or shell (every real-process CLI test does)."""
    from . import harness

    nodeid = request.node.nodeid
    real_in_process, real_popen_init = harness._in_process, subprocess.Popen.__init__

    def in_process(*args: Any, **kwargs: Any) -> Any:
        _RUNS.setdefault(nodeid, set()).add("in-process")
        return real_in_process(*args, **kwargs)

    def popen_init(self: Any, argv: Any, *args: Any, **kwargs: Any) -> None:
        if _runs_llmcli([str(a) for a in (argv if isinstance(argv, (list, tuple)) else [argv])]):
            _RUNS.setdefault(nodeid, set()).add("process")
        real_popen_init(self, argv, *args, **kwargs)

    def terminal_init(self: Any, argv: list[str], *args: Any, **kwargs: Any) -> None:
        if _runs_llmcli(argv):
            _RUNS.setdefault(nodeid, set()).add("process")
        real_terminal_init(self, argv, *args, **kwargs)

    from .pty_helper import Terminal

    real_terminal_init = Terminal.__init__
    monkeypatch.setattr(Terminal, "__init__", terminal_init)
    monkeypatch.setattr(harness, "_in_process", in_process)
    monkeypatch.setattr(subprocess.Popen, "__init__", popen_init)


def _runs_llmcli(words: list[str]) -> bool:
    """``python -m llmcli ...``, an ``llmcli`` executable, or a shell (the completion
    tests drive llmcli through bash, zsh and fish)."""
    name = Path(words[0]).name if words else ""
    return (name in ("llmcli", "bash", "zsh", "fish")
            or any(a == "-m" and b == "llmcli" for a, b in zip(words, words[1:])))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its counts to the controller, which prints the line."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["llmcli_runs"] = {k: sorted(v) for k, v in _RUNS.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: add up what each worker counted."""
    for nodeid, modes in getattr(node, "workeroutput", {}).get("llmcli_runs", {}).items():
        _RUNS.setdefault(nodeid, set()).update(modes)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: how many tests ran the CLI in-process and how many in a process."""
    if not _RUNS:
        return
    process = sum(1 for modes in _RUNS.values() if "process" in modes)
    terminalreporter.write_line(f"llmcli CLI tests: {len(_RUNS) - process} in-process, "
                                f"{process} with a child process")


# -- No silent skips in CI ------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``CI=true`` a skipped test fails: CI installs what the tests need (zsh,
    fish), so a skip there means a check that silently did not run."""
    outcome = yield
    report = outcome.get_result()   # type: ignore[attr-defined]
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may be: {reason}"


# -- Longest first ----------------------------------------------------------------------

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The README test (a fresh venv, ~18 s) goes first: with -n auto it then overlaps
    the rest of the suite instead of running alone at its end."""
    items.sort(key=lambda item: item.get_closest_marker("readme") is None)
