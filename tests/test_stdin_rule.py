"""Stdin is never silently dropped (issue 8, point 1; issue 11, point 8): a slow
producer is waited for, a silent open stdin fails within the documented bound, empty
prompts send nothing. Real child processes: real stdin inheritance is the subject."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from llmcli.testing import reply_for

from .conftest import ROOT


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llmcli", *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 20) -> tuple[int, str, str]:
    try:
        proc.wait(timeout=timeout)
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    finally:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        proc.kill()
    return proc.returncode, out, err


def test_a_slow_producer_is_waited_for(api_env, server):
    # (sleep; echo data) | llmcli chat "Summarize": the data is sent, not dropped
    env = dict(api_env, LLMCLI_STDIN_WAIT="5")
    proc = spawn(env, "chat", "Summarize")
    time.sleep(1.2)   # the producer is slow: nothing on the pipe for over a second
    proc.stdin.write(b"data\n")
    proc.stdin.close()
    code, out, err = finish(proc)
    assert code == 0, err
    assert out == reply_for(user("Summarize\n\ndata")) + "\n"
    assert err == ""


@pytest.mark.parametrize("args", [["chat", "hi"], ["chat"], ["stream", "hi"]])
def test_a_silent_open_stdin_fails_within_the_bound_and_sends_nothing(api_env, server, args):
    env = dict(api_env, LLMCLI_STDIN_WAIT="0.5")
    before = server.stats()["total_requests"]
    started = time.monotonic()
    proc = spawn(env, *args)    # stdin stays open and silent, as a CI runner's may
    code, out, err = finish(proc)
    elapsed = time.monotonic() - started
    assert code == 2 and out == ""
    assert "nothing arrived on it within 0.5s" in err
    assert "--no-stdin" in err and "'-'" in err and err.count("\n") == 1
    assert 0.5 <= elapsed < 10
    assert server.stats()["total_requests"] == before


def test_max_time_caps_the_wait_for_a_silent_stdin(api_env, server):
    """--max-time bounds the whole command, the stdin wait included."""
    env = dict(api_env, LLMCLI_STDIN_WAIT="30")
    started = time.monotonic()
    code, out, err = finish(spawn(env, "chat", "--max-time", "0.5", "hi"))
    assert code == 2 and out == ""
    assert "within 0.5s (--max-time)" in err
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("option", ["--messages", "--conversation"])
def test_messages_and_a_silent_stdin_fail_rather_than_send_without_it(api_env, server,
                                                                     tmp_path, option):
    history = tmp_path / "history.json"
    history.write_text(json.dumps(user("from the file")))
    proc = spawn(dict(api_env, LLMCLI_STDIN_WAIT="0.3"), "chat", option, str(history))
    code, out, err = finish(proc)
    assert code == 2 and out == "" and "--no-stdin" in err


def test_no_stdin_skips_a_silent_stdin_at_once(api_env):
    proc = spawn(dict(api_env, LLMCLI_STDIN_WAIT="30"), "chat", "--no-stdin", "hi")
    code, out, err = finish(proc, timeout=15)
    assert code == 0, err
    assert out == reply_for(user("hi")) + "\n"


def test_dash_waits_past_the_bound(api_env):
    env = dict(api_env, LLMCLI_STDIN_WAIT="0.2")
    proc = spawn(env, "chat", "-")
    time.sleep(0.8)
    proc.stdin.write(b"late prompt")
    proc.stdin.close()
    code, out, err = finish(proc)
    assert code == 0, err
    assert out == reply_for(user("late prompt")) + "\n"


def test_sigterm_while_waiting_for_stdin_exits_130(api_env):
    proc = spawn(dict(api_env, LLMCLI_STDIN_WAIT="30"), "chat", "hi")
    time.sleep(1.0)   # started and waiting on stdin
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc, timeout=10)
    assert code == 130 and out == ""
    assert "interrupted" in err


@pytest.mark.parametrize("args, stdin", [
    (["chat", ""], None),
    (["chat", "   \n\t"], None),
    (["stream", ""], None),
    (["chat", "-"], ""),
    (["chat", "-"], "  \n\n"),
    (["chat"], "\n"),
])
def test_an_empty_prompt_is_a_usage_error_and_sends_nothing(cli, server, args, stdin):
    before = server.stats()["total_requests"]
    done = cli(*args, input=stdin) if stdin is not None else cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and "empty" in done.stderr and done.stderr.count("\n") == 1
    assert server.stats()["total_requests"] == before


def test_an_empty_prompt_with_piped_data_is_still_an_error(cli, server):
    # `llmcli chat "$UNSET" < notes.txt` must not answer the notes without the question
    done = cli("chat", "", input="notes")
    assert done.returncode == 2 and "empty" in done.stderr


def test_dev_null_with_a_prompt_sends_the_prompt(api_env):
    with open(os.devnull, "rb") as null:
        done = subprocess.run([sys.executable, "-m", "llmcli", "chat", "hi"], cwd=ROOT,
                              env=api_env, stdin=null, capture_output=True, text=True,
                              timeout=30)
    assert done.returncode == 0 and done.stdout == reply_for(user("hi")) + "\n"


def test_invalid_utf8_on_stdin_is_one_warning(api_env):
    proc = spawn(api_env, "chat", "x")
    proc.stdin.write(b"caf\xe9 ok")
    proc.stdin.close()
    code, out, err = finish(proc)
    assert code == 0
    assert out == reply_for(user("x\n\ncaf\ufffd ok")) + "\n"
    assert err.count("\n") == 1 and "not valid UTF-8" in err and "offset 3" in err


def test_an_empty_prompt_is_refused_at_a_terminal_too(api_env, server):
    from .pty_helper import Terminal, llmcli_argv, terminal_env

    before = server.stats()["total_requests"]
    term = Terminal(llmcli_argv("chat", "-i", "   "), terminal_env(api_env), cwd=str(ROOT))
    try:
        term.expect("the prompt is empty")
        assert term.wait() == 2
    finally:
        term.close()
    assert server.stats()["total_requests"] == before
