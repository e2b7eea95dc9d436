"""`--conversation FILE`: continued run after run, and never corrupted by a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llmcli.cli.conversation import load_conversation, save_conversation

from .conftest import ROOT
from .harness import interruptible


def turn(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


FIRST = [turn("user", "first"), turn("assistant", "echo: first")]


def test_two_runs_give_the_model_both_turns(cli, server, tmp_path):
    conv = tmp_path / "conv.json"    # missing: a new conversation
    assert cli("chat", "--conversation", str(conv), "first").returncode == 0
    assert json.loads(conv.read_text()) == FIRST
    done = cli("stream", "--conversation", str(conv), "second")
    assert done.returncode == 0, done.stderr
    assert server.stats()["requests"][-1]["body"]["messages"] == FIRST + [turn("user", "second")]
    assert json.loads(conv.read_text()) == FIRST + [turn("user", "second"),
                                                    turn("assistant", "echo: second")]


def test_system_prompt_and_json_output_keep_the_file_in_api_shape(cli, tmp_path):
    conv = tmp_path / "conv.json"
    conv.write_text("")              # an empty file (mktemp, touch) is a new one too
    done = cli("chat", "--json", "-s", "be brief", "--conversation", str(conv), "hi")
    assert json.loads(done.stdout)["content"] == "echo: hi"
    assert json.loads(conv.read_text()) == [turn("system", "be brief"), turn("user", "hi"),
                                            turn("assistant", "echo: hi")]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_kill_during_the_second_turn_leaves_the_first_intact(cli, api_env, tmp_path, sig):
    conv = tmp_path / "conv.json"
    assert cli("chat", "--conversation", str(conv), "first").returncode == 0
    cmd = [sys.executable, "-m", "llmcli", "stream", "--conversation", str(conv),
           "#chunks:100 #interval:50 slow"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=api_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=interruptible)
    try:
        assert proc.stdout.read(3) == b"w0 "     # the second reply is being written
        proc.send_signal(sig)
        code = proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert json.loads(conv.read_text()) == FIRST
    # no temp file left ("home" holds the usage log of the first turn); kill -9 may
    # leave the lock file, held by no one (the kernel let go)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "home")
    assert left == (["conv.json"] if sig == signal.SIGINT else ["conv.json", "conv.json.lock"])


def test_a_broken_file_is_a_usage_error_and_left_alone(cli, tmp_path):
    conv = tmp_path / "conv.json"
    conv.write_text('{"not": "a list"}')
    done = cli("chat", "--conversation", str(conv), "hi")
    assert done.returncode == 2 and "--conversation" in done.stderr
    assert conv.read_text() == '{"not": "a list"}'
    both = cli("chat", "--conversation", str(conv), "--messages", str(conv), "hi")
    assert both.returncode == 2 and "not both" in both.stderr


def test_save_is_atomic_when_the_rename_fails(tmp_path, monkeypatch):
    conv = tmp_path / "conv.json"
    save_conversation(conv, FIRST)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_conversation(conv, FIRST + [turn("user", "lost")])
    assert load_conversation(conv) == FIRST
    assert [p.name for p in tmp_path.iterdir()] == ["conv.json"]


def test_save_keeps_the_mode_of_an_existing_file(tmp_path: Path):
    conv = tmp_path / "conv.json"
    conv.write_text("[]")
    conv.chmod(0o640)
    save_conversation(conv, FIRST)
    assert conv.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "new.json"
    save_conversation(fresh, FIRST)
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_a_conversation_or_param_nested_too_deeply_is_a_usage_error(cli, tmp_path):
    conv = tmp_path / "deep.json"
    conv.write_text("[" * 200_000 + "]" * 200_000)
    done = cli("chat", "--conversation", str(conv), "hi")
    assert done.returncode == 2 and "nested too deeply" in done.stderr, done.stderr
    done = cli("chat", "--param", "x=" + "[" * 200_000 + "]" * 200_000, "hi")
    assert done.returncode == 2 and "nested too deeply" in done.stderr, done.stderr
