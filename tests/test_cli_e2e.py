"""End to end: the real `llmcli` process against the project's test server on
127.0.0.1, through real sockets and real SSE."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from llmcli.testing import MockOpenAIServer, reply_for

from .conftest import API_KEY, ROOT, run_cli
from .harness import interruptible


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- chat -----------------------------------------------------------------------------

def test_chat_prints_the_reply_and_only_the_reply(cli):
    done = cli("chat", "hello world")
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user("hello world")) + "\n"
    assert done.stderr == ""


def test_chat_json_has_the_documented_fields(cli):
    done = cli("chat", "--json", "hello")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert list(obj) == ["id", "model", "content", "finish_reason", "usage", "request_id",
                         "attempts", "raw", "cost"]
    assert obj["cost"] is None      # the test model has no price (tests/test_cost.py prices it)
    assert obj["content"] == reply_for(user("hello"))
    assert obj["finish_reason"] == "stop" and obj["model"] == "test-model"
    assert obj["usage"]["total_tokens"] == obj["usage"]["prompt_tokens"] + obj["usage"]["completion_tokens"]
    assert obj["raw"]["choices"][0]["message"]["content"] == obj["content"]
    assert obj["request_id"].startswith("req_") and obj["attempts"] == 1


def test_stdin_is_appended_after_the_prompt(cli):
    done = cli("chat", "summarize", input="line one\nline two\n")
    assert done.stdout == reply_for(user("summarize\n\nline one\nline two")) + "\n"


def test_piped_stdin_alone_is_the_prompt_and_dash_reads_it(cli):
    assert cli("chat", input="from stdin").stdout == reply_for(user("from stdin")) + "\n"
    assert cli("chat", "-", input="dash").stdout == reply_for(user("dash")) + "\n"


def test_no_stdin_ignores_a_pipe(cli):
    done = cli("chat", "--no-stdin", "only this", input="not this")
    assert done.stdout == reply_for(user("only this")) + "\n"


def test_no_prompt_at_all_is_a_usage_error(cli):
    done = cli("chat")
    assert done.returncode == 2
    assert "no prompt" in done.stderr and done.stdout == ""


def test_system_param_and_messages_reach_the_server(cli, server, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"role": "user", "content": "earlier"},
                                   {"role": "assistant", "content": "reply"}]))
    done = cli("chat", "-s", "be brief", "--param", "seed=7", "--param", "stop=[\"x\"]",
               "--param", "user=alice", "--temperature", "0.5", "--messages", str(history), "now")
    assert done.returncode == 0, done.stderr
    body = server.stats()["requests"][-1]["body"]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert [m["content"] for m in body["messages"][1:]] == ["earlier", "reply", "now"]
    assert body["seed"] == 7 and body["stop"] == ["x"] and body["user"] == "alice"
    assert body["temperature"] == 0.5


def test_a_reply_cut_short_warns_on_stderr(cli):
    done = cli("chat", "--max-tokens", "2", "one two three four")
    assert done.returncode == 0
    assert done.stdout == "echo: one\n"
    assert "cut short" in done.stderr


# -- stream ---------------------------------------------------------------------------

def test_stream_text_equals_the_chat_reply(cli):
    done = cli("stream", "stream me please")
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user("stream me please")) + "\n"


def test_stream_json_is_ndjson_with_a_final_object(cli):
    done = cli("stream", "--json", "#chunks:5 x")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["type"] for o in lines] == ["delta"] * 5 + ["done"]
    assert "".join(o["content"] for o in lines[:-1]) == reply_for(user("#chunks:5 x"))
    final = lines[-1]
    assert final["finish_reason"] == "stop" and final["usage"]["completion_tokens"] > 0


def test_stream_error_inside_the_stream_keeps_what_was_printed(cli):
    done = cli("stream", "#fault:streamerror boom")
    assert done.returncode == 5
    assert done.stdout != "" and done.stderr.count("llmcli: error:") == 1


def test_stream_into_a_closed_pipe_exits_quietly(api_env):
    cmd = [sys.executable, "-m", "llmcli", "stream", "#chunks:20000 x"]
    producer = subprocess.Popen(cmd, cwd=ROOT, env=api_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    producer.stdout.read(10)
    producer.stdout.close()          # like `| head -c 10`
    err = producer.stderr.read().decode()
    assert producer.wait(timeout=30) == 141
    assert "Traceback" not in err and "error" not in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_stream_exits_130_and_keeps_output(api_env, sig):
    cmd = [sys.executable, "-m", "llmcli", "stream", "#chunks:100 #interval:50 slow"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=api_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=interruptible)
    first = proc.stdout.read(3)      # the stream has started
    proc.send_signal(sig)
    rest = proc.stdout.read()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=10) == 130
    assert (first + rest).startswith(b"w0 ") and b"w99" not in rest   # cut, not finished
    assert "Traceback" not in err and "interrupted" in err


# -- models and config ----------------------------------------------------------------

def test_models_sorted_text_and_json(cli):
    text = cli("models")
    assert text.returncode == 0
    ids = text.stdout.split()
    assert ids == sorted(ids) and "test-model" in ids
    objs = json.loads(cli("models", "--json").stdout)
    assert [m["id"] for m in objs] == ids


def test_config_init_show_path(cli, clean_env):
    path = cli("config", "path").stdout.strip()
    assert path == str(clean_env / "config.yaml")
    assert cli("config", "init").returncode == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = cli("config", "init")
    assert again.returncode == 3 and "--force" in again.stderr
    assert cli("config", "init", "--force").returncode == 0
    shown = cli("config", "show")
    assert API_KEY not in shown.stdout and "sk-...WXYZ" in shown.stdout
    data = json.loads(cli("config", "show", "--json").stdout)["settings"]
    assert data["api_key"] == {"value": "sk-...WXYZ", "source": "env:OPENAI_API_KEY"}
    assert data["model"]["source"] == "env:LLMCLI_MODEL"


def test_profile_switches_server_and_model(cli, server, tmp_path, api_env):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"profiles:\n  t:\n    base_url: {server.base_url}\n    api_key: {API_KEY}\n"
                   "    model: test-model-large\n")
    env = {k: v for k, v in api_env.items() if k not in ("OPENAI_BASE_URL", "LLMCLI_MODEL")}
    done = run_cli("--config", str(cfg), "chat", "--json", "-p", "t", "hi", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "test-model-large"


# -- failures: one line, the documented exit code ---------------------------------------

def _one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("llmcli: error: ")
    assert done.stdout == ""
    return lines[0]


def test_usage_error_exit_2_in_one_line(cli):
    done = cli("chat", "--temperature", "hot", "x")
    assert done.returncode == 2
    assert "--temperature" in _one_error_line(done)
    as_json = cli("chat", "--json", "--no-such-flag", "x")
    assert as_json.returncode == 2
    error = json.loads(as_json.stderr.splitlines()[-1])["error"]
    assert error["type"] == "usage_error" and error["exit_code"] == 2


def test_config_error_names_file_key_and_line(cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: x\ntimout: 3\n")
    done = cli("--config", str(cfg), "chat", "hi")
    assert done.returncode == 3
    line = _one_error_line(done)
    assert f"{cfg}:2" in line and "timout" in line


def test_broken_yaml_is_a_config_error(cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: [unclosed\n")
    done = cli("--config", str(cfg), "models")
    assert done.returncode == 3 and str(cfg) in _one_error_line(done)


def test_verbose_logs_requests_and_retries_without_the_key(cli):
    done = cli("-v", "chat", "#fault:429@0*2 hi")
    assert done.returncode == 0
    assert done.stderr.count("-> 429") == 2 and "-> 200" in done.stderr
    assert done.stderr.count("retry ") == 2
    assert API_KEY not in done.stderr


def test_api_error_exit_5(cli):
    line = _one_error_line(cli("chat", "-m", "no-such-model", "x"))
    assert "404" in line and "no-such-model" in line
    assert cli("chat", "--retries", "0", "#fault:500 x").returncode == 5


@pytest.mark.parametrize("fault", ["html", "nonjson", "detail", "plain"])
def test_odd_error_bodies_become_one_clear_line(cli, fault):
    done = cli("chat", "--retries", "0", f"#fault:{fault} x")
    assert done.returncode == 5
    line = _one_error_line(done)
    assert "<html" not in line.lower() and len(line) < 400


def test_connection_refused_exit_6(cli, api_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]   # bound, not listening: connections are refused
        done = run_cli("chat", "--retries", "0", "x",
                       env=dict(api_env, OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1"))
    assert done.returncode == 6 and "connection" in _one_error_line(done)


def test_max_time_bounds_a_hang_across_retries(cli):
    started = time.monotonic()
    done = cli("chat", "--timeout", "5", "--max-time", "1", "#fault:hang x")
    assert done.returncode == 6
    assert "time budget" in _one_error_line(done)
    assert time.monotonic() - started < 15   # not 4 attempts x 5 s


def test_retries_recover_from_a_dropped_connection(cli):
    done = cli("chat", "#fault:drop*1 x")
    assert done.returncode == 0 and done.stdout == reply_for(user("#fault:drop*1 x")) + "\n"


def test_version_and_help(cli):
    assert cli("--version").stdout.startswith("llmcli ")
    helped = cli("--help")
    assert helped.returncode == 0
    for name in ("chat", "stream", "models", "config"):
        assert name in helped.stdout


# -- user mistakes are usage or config errors, never "please report it" -----------------

@pytest.mark.parametrize("flag,value", [("--timeout", "inf"), ("--timeout", "nan"),
                                        ("--max-time", "inf"), ("--temperature", "nan")])
def test_non_finite_numbers_in_flags_are_usage_errors(cli, flag, value):
    done = cli("chat", flag, value, "x")
    assert done.returncode == 2
    assert flag in _one_error_line(done) and "finite" in done.stderr


def test_non_finite_numbers_in_env_and_config_are_config_errors(cli, api_env, tmp_path):
    done = run_cli("chat", "x", env=dict(api_env, LLMCLI_TIMEOUT="inf"))
    assert done.returncode == 3 and "LLMCLI_TIMEOUT" in _one_error_line(done)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: test-model\ntimeout: .inf\n")
    done = cli("--config", str(cfg), "chat", "x")
    assert done.returncode == 3 and f"{cfg}:2" in _one_error_line(done)


def test_a_log_file_that_cannot_be_opened_is_a_usage_error(cli, tmp_path):
    done = cli("--log-file", str(tmp_path / "missing" / "x.log"), "chat", "x")
    assert done.returncode == 2 and "--log-file" in _one_error_line(done)


def test_a_conversation_that_could_not_be_saved_is_refused_before_sending(cli, server,
                                                                          tmp_path):
    prompt = f"unsent {os.getpid()} {time.monotonic()}"
    done = cli("chat", "--conversation", str(tmp_path / "missing" / "c.json"), prompt)
    assert done.returncode == 2 and "--conversation" in _one_error_line(done)
    sent = [r["body"] for r in server.stats()["requests"] if r.get("body")]
    assert not any(prompt in json.dumps(body) for body in sent)


def test_config_init_where_it_cannot_write_is_a_config_error(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = cli("--config", str(blocker / "c.yaml"), "config", "init")
    assert done.returncode == 3 and "cannot write" in _one_error_line(done)


def test_a_closed_stdout_is_one_line_and_exit_141_before_sending(api_env):
    done = subprocess.run([sys.executable, "-m", "llmcli", "chat", "hi"], cwd=ROOT,
                          env=api_env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=30, preexec_fn=lambda: os.close(1))
    assert done.returncode == 141
    assert done.stderr == "llmcli: error: stdout is closed: nowhere to write the output\n"


def test_messages_and_piped_stdin_make_the_prompt(cli, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"role": "system", "content": "s"}]))
    done = cli("chat", "--messages", str(history), input="piped")
    assert done.returncode == 0 and done.stdout == reply_for(user("piped")) + "\n"


# -- help and typos ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["config"]])
def test_no_arguments_print_the_help_as_help(cli, args):
    done = cli(*args)
    assert done.returncode == 2
    assert done.stdout.startswith("Usage: llmcli") and "Commands:" in done.stdout
    assert done.stderr == ""


def test_a_mistyped_command_suggests_once(cli):
    line = _one_error_line(cli("chatt"))
    assert line.count("Did you mean") == 1 and "'chat'" in line


# -- stream is the command's choice, not a param's ---------------------------------------

def test_a_stream_param_is_dropped_with_a_warning(cli, server, tmp_path):
    done = cli("chat", "--param", "stream=true", "--param", "seed=3", "param stream")
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user("param stream")) + "\n"
    assert done.stderr.count("warning") == 1 and "stream" in done.stderr
    body = server.stats()["requests"][-1]["body"]
    assert "stream" not in body and body["seed"] == 3
    cfg = tmp_path / "c.yaml"
    cfg.write_text("params:\n  stream: true\n  stream_options: {include_usage: false}\n")
    done = cli("--config", str(cfg), "stream", "--json", "config stream")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["usage"] is not None


# -- the key never leaks, even from a server that echoes it everywhere --------------------

@pytest.fixture(scope="module")
def leaky_server():
    """A server that echoes the raw key it was sent into 401 messages, error bodies,
    x-request-id and in-stream errors (docs/test-server.md, echo_key)."""
    with MockOpenAIServer(api_key=API_KEY, echo_key=True) as srv:
        yield srv


@pytest.fixture
def leaky_env(api_env, leaky_server):
    return dict(api_env, OPENAI_BASE_URL=leaky_server.base_url)


def test_auth_error_exit_4_never_shows_the_key(leaky_env, tmp_path):
    wrong = "sk-wrong-key-abcdefghijkl5678"
    log = tmp_path / "llmcli.log"
    done = run_cli("-v", "--debug", "--log-file", str(log), "chat", "--json", "hi",
                   env=dict(leaky_env, OPENAI_API_KEY=wrong))
    assert done.returncode == 4
    everything = done.stdout + done.stderr + log.read_text()
    assert wrong not in everything and "sk-...5678" in everything
    error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert error["type"] == "authentication_error" and error["status"] == 401
    assert set(error) >= {"type", "message", "status", "retryable", "request_id"}


@pytest.mark.parametrize("args", [
    ["chat", "hi"], ["stream", "hi"], ["models"], ["models", "--json"],
    ["chat", "--json", "hi"], ["stream", "--json", "hi"],   # request_id: the echoed key
])
def test_the_key_never_appears_on_success_with_verbose_and_debug(leaky_env, args, tmp_path):
    log = tmp_path / "debug.log"
    done = run_cli("-v", "--debug", "--log-file", str(log), *args, env=leaky_env)
    assert done.returncode == 0, done.stderr
    assert API_KEY not in done.stdout + done.stderr + log.read_text()


@pytest.mark.parametrize("args", [
    ["stream", "#fault:streamerror x"], ["stream", "--json", "#fault:streamerror x"],
    ["chat", "--json", "#fault:500 x", "--retries", "1"], ["chat", "-m", "nope", "x"],
    ["chat", "--json", "-m", "nope", "x"], ["models", "--base-url", "{url}/nope"],
    ["config", "show"], ["config", "show", "--json"]])
def test_the_key_never_appears_with_verbose_and_debug(leaky_env, args, tmp_path):
    log = tmp_path / "debug.log"
    args = [a.replace("{url}", leaky_env["OPENAI_BASE_URL"]) for a in args]
    done = run_cli("-v", "--debug", "--log-file", str(log), *args, env=leaky_env)
    everything = done.stdout + done.stderr + (log.read_text() if log.exists() else "")
    assert API_KEY not in everything
    assert API_KEY[-4:] in everything   # the server's echo (or config show), masked


@pytest.mark.parametrize("output_format", ["jsonl", "openai-batch"])
def test_the_key_never_appears_in_batch_output_or_summary(leaky_env, tmp_path, output_format):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in [
        {"id": "ok", "prompt": "fine"}, {"id": "missing", "prompt": "x", "model": "nope"},
        {"id": "broken", "prompt": "#fault:500 x"}]))
    out, summary, log = tmp_path / "out.jsonl", tmp_path / "summary.json", tmp_path / "b.log"
    done = run_cli("-v", "--debug", "--log-file", str(log), "batch", str(source),
                   "--output-format", output_format, "--retries", "0", "-o", str(out),
                   "--summary-json", str(summary), env=leaky_env)
    assert done.returncode == 7, done.stderr
    files = out.read_text() + summary.read_text() + log.read_text()
    everything = done.stdout + done.stderr + files
    assert API_KEY not in everything
    assert API_KEY[-4:] in files   # the server's echoes are there, masked


@pytest.mark.parametrize("flag", ["--messages", "--conversation"])
def test_an_endless_messages_file_is_one_usage_line_not_memory_error(cli, server, flag):
    """/dev/zero (or a runaway file) is refused after a bounded read, nothing sent."""
    before = server.stats()["requests"]
    done = cli("chat", flag, "/dev/zero", "hi", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "larger than" in done.stderr and "please report" not in done.stderr
    assert server.stats()["requests"] == before


@pytest.mark.parametrize("command", ["chat", "batch"])
def test_credentials_in_base_url_do_not_replace_the_key(cli, server, api_env, tmp_path, command):
    """`user:pw@` in base_url would become Basic auth in the Authorization header that
    carries the key (httpx: sent instead of the key; aiohttp: request refused)."""
    url = server.base_url.replace("http://", "http://alice:pw@")
    if command == "chat":
        done = cli("chat", "--base-url", url, "hi")
    else:
        (tmp_path / "in.txt").write_text("one\ntwo\n")
        done = cli("batch", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                   "--base-url", url)
    assert done.returncode == 0, done.stderr
    assert "pw" not in done.stderr
