"""Issue 11, point 7: completion never runs code. Profile and model names from the
config are data in bash, zsh and fish: a name with $(...), backticks, quotes or spaces
is offered (quoted) or skipped, and never evaluated. Real shells, a real config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT
from .pty_helper import Terminal, terminal_env
from .test_completions import COMPLETIONS, bash_complete, shell_env  # noqa: F401 (fixture)


def hostile_config(tmp_path, marker) -> str:
    """Profiles and a model whose names would run `touch MARKER` if evaluated."""
    return (
        "model: \"m$(touch " + str(marker) + ")\"\n"
        "profiles:\n"
        f"  \"p$(touch {marker})\":\n    model: plain\n"
        f"  \"b`touch {marker}`\":\n    model: x\n"
        "  \"quo'te\\\"s\":\n    model: y\n"
        "  \"two words\":\n    model: z\n"
    )


@pytest.fixture
def hostile_env(shell_env, tmp_path):  # noqa: F811
    marker = tmp_path / "pwned"
    config = tmp_path / "hostile.yaml"
    config.write_text(hostile_config(tmp_path, marker))
    return dict(shell_env, LLMCLI_CONFIG=str(config)), marker


def test_bash_offers_hostile_names_quoted_and_never_runs_them(hostile_env) -> None:
    env, marker = hostile_env
    profiles = bash_complete("llmcli chat -p ", env)
    models = bash_complete("llmcli chat -m ", env)
    assert not marker.exists()
    assert f"p\\$\\(touch\\ {marker}\\)" in profiles
    assert "two\\ words" in profiles and len(profiles) == 4
    assert any(m.startswith("m\\$\\(touch") for m in models)
    assert bash_complete("llmcli chat -p tw", env) == ["two\\ words"]
    assert not marker.exists()


def test_a_name_with_a_line_break_is_skipped(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text('profiles:\n  "a\\nb":\n    model: m\n  ok:\n    model: m\n')
    done = subprocess.run([sys.executable, "-m", "llmcli", "--config", str(config)],
                          env=dict(os.environ, _LLMCLI_COMPLETE_VALUES="profile"), cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    assert done.stdout == "ok\n"      # not "a" and "b" as two names


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_never_runs_hostile_names(hostile_env) -> None:
    env, marker = hostile_env
    script = (f"source {COMPLETIONS / 'llmcli.fish'}\n"
              "complete -C 'llmcli chat -p '; complete -C 'llmcli chat -m '")
    done = subprocess.run(["fish", "--no-config", "-c", script], env=env,
                          capture_output=True, text=True, timeout=20)
    offered = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert not marker.exists()
    assert f"p$(touch {marker})" in offered and "two words" in offered


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_never_runs_hostile_names(hostile_env, tmp_path) -> None:
    env, marker = hostile_env
    term = Terminal([shutil.which("zsh"), "-f", "-i"], terminal_env(env, TERM="xterm"),
                    cwd=str(tmp_path))
    try:
        bin_dir = env["PATH"].split(":")[0]
        term.send(f"fpath=({COMPLETIONS} $fpath); path=({bin_dir} $path); autoload -U compinit;"
                  " compinit -u; echo RE''ADY\r")
        term.expect("READY")
        term.send("llmcli chat -p tw\t")
        term.expect("two\\ words")             # inserted, quoted
        term.send("\x15llmcli chat -p \t\t")
        term.expect("touch")
    finally:
        term.close()
    assert not marker.exists()
