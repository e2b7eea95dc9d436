"""The in-process harness (tests/harness.py) and the run environment it stands on
(llmcli/cli/env.py): one run leaves nothing behind for the next, stdin given as bytes
or as a pipe follows the same rule as a real process's, and both ways of running agree."""

from __future__ import annotations

import json
import logging
import os
import re
import threading

import pytest

from llmcli.cli.env import Environment, current, using
from llmcli.testing import reply_for

from .conftest import API_KEY
from .test_cli_e2e import user


def _stable(stdout: str) -> dict:
    data = json.loads(stdout)
    for name in ("id", "request_id", "raw"):   # per response, by design
        data.pop(name)
    return data


def test_in_process_and_child_process_runs_agree(cli):
    inside = cli("chat", "--json", "same answer", input="piped")
    outside = cli("chat", "--json", "same answer", input="piped", process=True)
    assert (inside.returncode, inside.stderr) == (outside.returncode, outside.stderr) == (0, "")
    assert _stable(inside.stdout) == _stable(outside.stdout)
    failed = [cli("chat", "--json", "--retries", "0", "#fault:401 x", process=p) for p in (0, 1)]
    request_ids = re.compile(r"req_[0-9a-f]+")
    inside, outside = ((f.returncode, f.stdout, request_ids.sub("req_", f.stderr)) for f in failed)
    assert inside == outside and inside[0] == 4 and "authentication_error" in inside[2]


def test_json_errors_of_one_run_do_not_reach_the_next(cli):
    as_json = cli("chat", "--json", "--retries", "0", "#fault:500 x").stderr.splitlines()
    assert len(as_json) == 2 and json.loads(as_json[1])["error"]["exit_code"] == 5
    plain = cli("chat", "--retries", "0", "#fault:500 x")
    assert plain.returncode == 5 and "{" not in plain.stderr
    assert len(plain.stderr.splitlines()) == 1


def test_verbose_logging_is_taken_off_after_each_run(cli):
    first = cli("-v", "chat", "hi")
    second = cli("-v", "chat", "hi")
    assert first.stderr.count("POST") == second.stderr.count("POST") >= 1
    logger = logging.getLogger("llmcli")
    assert not logger.handlers and not logger.filters and logger.level == logging.NOTSET
    quiet = cli("chat", "hi")
    assert quiet.stderr == ""


def test_secrets_and_state_live_only_as_long_as_the_run(cli):
    assert cli("--debug", "chat", "hi").returncode == 0
    outside = current()
    assert not outside.debug and not outside.json_errors and API_KEY not in outside.secrets


def test_a_silent_pipe_on_stdin_is_waited_for_then_refused(cli, api_env):
    # the stdin rule (docs/usage.md): never a silent answer to the prompt alone
    read_end, write_end = os.pipe()
    try:
        done = cli("chat", "prompt only", stdin=read_end,
                   env=dict(api_env, LLMCLI_STDIN_WAIT="0.1"))
    finally:
        os.close(write_end)
        os.close(read_end)
    assert done.returncode == 2 and done.stdout == ""
    assert "nothing arrived on it within 0.1s" in done.stderr and "--no-stdin" in done.stderr


def test_a_pipe_that_delivers_in_time_is_appended(cli, api_env):
    read_end, write_end = os.pipe()
    writer = threading.Timer(0.05, lambda: (os.write(write_end, b"late"), os.close(write_end)))
    writer.start()
    try:
        done = cli("chat", "prompt", stdin=read_end, env=dict(api_env, LLMCLI_STDIN_WAIT="5"))
    finally:
        writer.join()
        os.close(read_end)
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user("prompt\n\nlate")) + "\n"


def test_batch_records_reach_a_captured_stdout(cli):
    done = cli("batch", "-", "-q", input="one\ntwo\n")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2


def test_the_environment_is_current_only_inside_using():
    env = Environment(environ={"LLMCLI_STDIN_WAIT": "3"})
    with using(env):
        assert current() is env
    assert current() is not env


@pytest.mark.parametrize("process", [False, True])
def test_config_dir_follows_the_runs_variables(cli, api_env, tmp_path, process):
    env = dict(api_env, XDG_CONFIG_HOME=str(tmp_path / "elsewhere"))
    done = cli("config", "path", env=env, process=process)
    assert done.stdout.strip() == str(tmp_path / "elsewhere" / "llmcli" / "config.yaml")
    assert Environment(environ=env).config_dir() == tmp_path / "elsewhere" / "llmcli"


def test_an_in_process_run_cannot_reach_an_outside_host(cli) -> None:
    """conftest's guard: a test that points llmcli at a real provider by mistake fails
    at the lookup, before any traffic leaves the machine."""
    done = cli("chat", "--base-url", "https://api.example.com/v1", "--retries", "0", "hi")
    assert done.returncode == 6 and "tests resolve no outside host" in done.stderr
