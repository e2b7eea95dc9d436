"""The start-up budget, held structurally: what each command imports, never how long it
takes (the figures live in bench/ and docs/performance.md).

Each check runs the real CLI in a child process under ``python -X importtime`` and reads
the names of the modules it imported, so nothing imported by the test runner itself can
hide or fake an import. Every check also asserts a module the command does need, so a
broken parse cannot make the banned-module checks pass by finding nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

# Never on a one-shot path: the SDK (~580 ms), the async stack, rich (batch's progress
# bar on a terminal only).
HEAVY = {"openai", "aiohttp", "asyncio", "rich"}
# Help and version answer without the HTTP stack; YAML only when a config file exists.
HTTP = {"httpx", "httpcore", "h11", "ssl"}


def imported(*args: str, env: dict[str, str]) -> set[str]:
    """Every module `llmcli ARGS` imported, and the top-level package of each
    (``rich.console`` adds ``rich``), from ``-X importtime``; the command must succeed."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmcli", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          stdin=subprocess.DEVNULL, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 0, [line for line in lines if not line.startswith("import time:")]
    names = {line.rsplit("|", 1)[-1].strip() for line in lines
             if line.startswith("import time:") and "self [us]" not in line}
    return {name.split(".")[0] for name in names} | names


def python_modules(code: str, env: dict[str, str]) -> set[str]:
    """``sys.modules`` after running ``code`` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(*sys.modules)"],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=True,
                          timeout=60)
    return set(done.stdout.split())


@pytest.fixture
def env(clean_env: Path) -> dict[str, str]:
    """The isolated environment of conftest's clean_env: no config file, no API settings."""
    return dict(os.environ)


def test_importing_the_cli_loads_no_http_stack_and_nothing_heavy(env: dict[str, str]) -> None:
    modules = python_modules("import llmcli.cli.app", env)
    assert "typer" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY | HTTP | {"yaml"}}


def test_the_core_never_imports_the_cli_framework(env: dict[str, str]) -> None:
    modules = python_modules(
        "import llmcli.core.client, llmcli.core.chat, llmcli.core.sse, llmcli.config", env)
    assert "httpx" in modules
    assert not {m for m in modules if m.split(".")[0] in {"typer", "click", "rich", "openai"}}


def test_importing_httpx_through_the_core_skips_httpx_own_cli(env: dict[str, str]) -> None:
    # httpx/__init__ imports httpx._main (click, rich, pygments) when they are installed;
    # llmcli.core._httpx stands in for it, and the real one still loads on demand.
    modules = python_modules("import llmcli.core.client", env)
    assert "httpx._main" not in modules and "pygments" not in modules
    modules = python_modules("import llmcli.core.client, httpx, httpx._main\n"
                             "assert httpx._main.__file__", env)
    assert "httpx._main" in modules


def test_version_is_answered_before_typer_or_http(env: dict[str, str]) -> None:
    names = imported("--version", env=env)
    assert "llmcli" in names
    assert not names & (HEAVY | HTTP | {"typer", "click", "yaml"})


@pytest.mark.parametrize("args", [["--help"], ["chat", "--help"], ["stream", "--help"]])
def test_help_loads_no_http_stack(args: list[str], env: dict[str, str]) -> None:
    names = imported(*args, env=env)
    assert "typer" in names
    assert not names & (HEAVY | HTTP | {"yaml"})


@pytest.mark.parametrize("args", [["chat", "hello"], ["stream", "hello"], ["models"]])
def test_one_shot_commands_load_only_what_they_use(args: list[str],
                                                   api_env: dict[str, str]) -> None:
    names = imported(*args, env=api_env)
    assert "httpx" in names
    assert not names & (HEAVY | {"yaml", "httpx._main", "pygments"})


def test_yaml_is_loaded_only_when_a_config_file_exists(api_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model: test-model\n", encoding="utf-8")
    names = imported("chat", "hello", env=dict(api_env, LLMCLI_CONFIG=str(config)))
    assert "yaml" in names
    assert not names & HEAVY


def test_batch_off_a_terminal_shows_no_progress_bar_machinery(api_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\n", encoding="utf-8")
    names = imported("batch", str(prompts), "-o", str(tmp_path / "out.jsonl"), env=api_env)
    assert "asyncio" in names
    assert not names & {"rich", "openai", "yaml"}
