"""The same end-to-end suite in every API dialect: the real CLI against the project's
test server, which speaks Chat Completions, Responses, Anthropic Messages and Gemini.

What must not change between dialects is checked here: the answer, the `--json`
schema, the exit codes, the conversation file's shape, batch records, masking."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from llmcli.testing import MockOpenAIServer, reply_for

from .conftest import API_KEY, run_cli

DIALECTS = ["openai-chat", "openai-responses", "anthropic", "gemini"]
NATIVE_PATHS = {"openai-chat": "/v1/chat/completions", "openai-responses": "/v1/responses",
                "anthropic": "/v1/messages",
                "gemini": "/v1beta/models/test-model:generateContent"}


def base_url(server: MockOpenAIServer, api: str) -> str:
    """Where each API lives on the test server (Gemini's is /v1beta)."""
    return server.base_url[:-3] + "/v1beta" if api == "gemini" else server.base_url


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(params=DIALECTS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(server: MockOpenAIServer, api: str) -> dict[str, str]:
    """LLMCLI_* settings (OPENAI_* would not reach a native dialect: see docs/config.md)."""
    return dict(os.environ, LLMCLI_API=api, LLMCLI_BASE_URL=base_url(server, api),
                LLMCLI_API_KEY=API_KEY, LLMCLI_MODEL="test-model")


@pytest.fixture
def run(env: dict[str, str]) -> Callable[..., Any]:
    def go(*args: str, **kwargs: Any) -> Any:
        kwargs.setdefault("env", env)
        return run_cli(*args, **kwargs)
    return go


@pytest.fixture
def tag() -> str:
    """Makes prompts unique: directive faults with a count are counted per body."""
    return uuid.uuid4().hex[:8]


def one_error_line(done: Any) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("llmcli: error: ")
    return lines[0]


def last_request(server: MockOpenAIServer) -> dict[str, Any]:
    return server.stats()["requests"][-1]


# -- the answer ---------------------------------------------------------------------------

def test_chat_prints_the_reply_and_only_the_reply(run, server, api):
    done = run("chat", "hello there")
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user("hello there")) + "\n" and done.stderr == ""
    assert last_request(server)["path"].startswith(NATIVE_PATHS[api].split(":")[0])


def test_stream_text_equals_the_chat_reply(run):
    done = run("stream", "one two three")
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user("one two three")) + "\n"


def test_chat_json_keeps_the_schema_with_the_native_response_under_raw(run, api):
    done = run("chat", "--json", "json please")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert list(out) == ["id", "model", "content", "finish_reason", "usage", "request_id",
                         "attempts", "raw", "cost"]
    assert out["content"] == reply_for(user("json please"))
    assert out["finish_reason"] == "stop" and out["model"] == "test-model" and out["id"]
    assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    native_key = {"openai-chat": "choices", "openai-responses": "output",
                  "anthropic": "content", "gemini": "candidates"}[api]
    assert native_key in out["raw"]


def test_stream_json_is_ndjson_deltas_then_done(run):
    done = run("stream", "--json", "a b c")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert "".join(x["content"] for x in lines[:-1]) == reply_for(user("a b c"))
    final = lines[-1]
    assert final["type"] == "done" and final["finish_reason"] == "stop"
    assert final["usage"]["total_tokens"] == 7 and final["id"] and final["model"]


@pytest.mark.parametrize("command", ["chat", "stream"])
def test_a_token_cap_is_finish_reason_length_with_a_warning(run, command):
    done = run(command, "--json", "--max-tokens", "2", "one two three four")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["finish_reason"] == "length"
    assert "cut short" in done.stderr


def test_stdin_is_appended_after_the_prompt(run):
    done = run("chat", "summarize:", input="piped text")
    assert done.stdout == reply_for(user("summarize:\n\npiped text")) + "\n", done.stderr


def test_system_prompt_and_params_go_where_the_api_wants_them(run, server, api):
    done = run("chat", "-s", "be terse", "--temperature", "0.5", "--param", "top_k=3", "hi")
    assert done.returncode == 0, done.stderr
    body = last_request(server)["body"]
    if api == "openai-chat":
        assert body["messages"][0] == {"role": "system", "content": "be terse"}
        assert body["temperature"] == 0.5 and body["top_k"] == 3
    elif api == "openai-responses":
        assert body["instructions"] == "be terse" and body["input"] == user("hi")
        assert body["temperature"] == 0.5 and body["top_k"] == 3
    elif api == "anthropic":
        assert body["system"] == "be terse" and body["messages"] == user("hi")
        assert body["max_tokens"] == 4096 and body["top_k"] == 3
    else:
        assert body["systemInstruction"] == {"parts": [{"text": "be terse"}]}
        assert body["generationConfig"] == {"temperature": 0.5, "topK": 3}


def test_a_conversation_is_stored_in_llmcli_shape_and_moves_between_dialects(
        run, env, server, tmp_path, api):
    conv = tmp_path / "conv.json"
    assert run("chat", "--conversation", str(conv), "-s", "sys", "first").returncode == 0
    other = "gemini" if api != "gemini" else "anthropic"
    moved = dict(env, LLMCLI_API=other, LLMCLI_BASE_URL=base_url(server, other))
    done = run("stream", "--conversation", str(conv), "second", env=moved)
    assert done.returncode == 0, done.stderr
    assert json.loads(conv.read_text()) == [
        {"role": "system", "content": "sys"}, *user("first"),
        {"role": "assistant", "content": reply_for(user("first"))}, *user("second"),
        {"role": "assistant", "content": reply_for(user("second"))}]


def test_models_lists_the_ids_as_passed_to_model(run):
    done = run("models")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gpt-4o-mini", "test-model", "test-model-large"]


def test_batch_writes_one_record_per_line_in_every_dialect(run, tmp_path, tag):
    source = tmp_path / "in.jsonl"
    rows = [{"id": "a", "prompt": f"{tag} alpha"},
            {"id": "b", "messages": [{"role": "user", "content": f"{tag} beta"}]},
            {"custom_id": "c", "method": "POST", "url": "/v1/responses",
             "body": {"model": "test-model", "input": f"{tag} gamma", "instructions": "s"}},
            {"id": "d", "prompt": f"{tag} delta #fault:500"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    done = run("batch", str(source), "-o", str(out), "--retries", "0")
    assert done.returncode == 7, done.stderr
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {"a", "b", "c", "d"}
    for key, word in (("a", "alpha"), ("b", "beta"), ("c", "gamma")):
        assert records[key]["status"] == "ok"
        assert records[key]["content"] == reply_for(user(f"{tag} {word}"))
        assert records[key]["usage"]["total_tokens"] > 0
    assert records["d"]["error"]["type"] == "server_error"


# -- every failure class ------------------------------------------------------------------

def test_a_wrong_key_is_exit_4_and_never_shown(run, env):
    wrong = "sk-wrong-key-abcdefghijkl5678"
    done = run("-v", "chat", "--json", "hi", env=dict(env, LLMCLI_API_KEY=wrong))
    assert done.returncode == 4
    assert wrong not in done.stdout + done.stderr
    error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert error["type"] == "authentication_error" and error["status"] == 401


def test_an_unknown_model_is_exit_5_not_found(run):
    done = run("chat", "-m", "no-such-model", "x")
    assert done.returncode == 5
    assert "404" in one_error_line(done) and "no-such-model" in one_error_line(done)


@pytest.mark.parametrize("status,kind", [(400, "bad_request"), (429, "rate_limit"),
                                         (500, "server_error"), (503, "server_error"),
                                         (529, "server_error")])
def test_status_faults_map_to_the_documented_error_types(run, status, kind):
    done = run("chat", "--json", "--retries", "0", f"#fault:{status} x")
    assert done.returncode == 5
    error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert error["type"] == kind and error["status"] == status
    assert error["retryable"] is (status >= 429)


def test_permission_denied_is_exit_4(run):
    done = run("chat", "--retries", "0", "#fault:403 x")
    assert done.returncode == 4 and "403" in one_error_line(done)


def test_retries_recover_with_verbose_logging_and_no_key(run, tag):
    done = run("-v", "chat", f"{tag} #fault:529@0*2 hi")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("-> 529") == 2 and "-> 200" in done.stderr
    assert API_KEY not in done.stderr


@pytest.mark.parametrize("fault", ["html", "nonjson", "detail", "plain"])
def test_odd_bodies_are_one_clear_line(run, fault):
    done = run("chat", "--retries", "0", f"#fault:{fault} x")
    assert done.returncode == 5
    line = one_error_line(done)
    assert "<html" not in line.lower() and len(line) < 400


def test_an_error_inside_the_stream_keeps_what_was_printed(run):
    done = run("stream", "--retries", "0", "one two three #fault:streamerror")
    assert done.returncode == 5
    assert done.stdout.startswith("echo: one")
    assert "error in stream" in done.stderr


def test_a_stream_cut_midway_is_exit_5_after_the_partial_reply(run):
    done = run("stream", "--retries", "0", "one two three #fault:dropmid")
    assert done.returncode in (5, 6), done.stderr
    assert done.stdout.startswith("echo: one")


def test_a_dropped_connection_is_retried(run, tag):
    done = run("chat", f"{tag} #fault:drop*1 x")
    assert done.returncode == 0, done.stderr
    assert done.stdout == reply_for(user(f"{tag} x")) + "\n"


def test_a_hang_is_bounded_by_max_time_exit_6(run):
    done = run("chat", "--timeout", "5", "--max-time", "0.5", "#fault:hang x")
    assert done.returncode == 6
    assert "time budget" in one_error_line(done)


def test_connection_refused_is_exit_6(run, env, api):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        done = run("chat", "--retries", "0", "x",
                   env=dict(env, LLMCLI_BASE_URL=f"http://127.0.0.1:{port}/v1"))
    assert done.returncode == 6 and "connection" in one_error_line(done)


def test_the_key_in_the_query_string_is_masked_everywhere(server, tmp_path):
    """Gemini's `auth_query: key`: the key rides in the URL, and must still never show."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"profiles:\n  g:\n    api: gemini\n    base_url: {base_url(server, 'gemini')}"
                   f"\n    api_key: {API_KEY}\n    auth_query: key\n    model: test-model\n")
    log = tmp_path / "debug.log"
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": "1", "prompt": "via batch"}\n{"id": "2", "prompt": "x",'
                      ' "model": "nope"}\n')
    for args in (["chat", "hi"], ["stream", "hi"], ["chat", "-m", "nope", "x"], ["models"],
                 ["batch", str(source), "-o", str(out), "--force"]):
        done = run_cli("-v", "--debug", "--log-file", str(log), "--config", str(cfg),
                       *args, "-p", "g")
        assert API_KEY not in done.stdout + done.stderr + log.read_text()
    assert API_KEY not in out.read_text()
    assert json.loads(out.read_text().splitlines()[0])["content"] == reply_for(user("via batch"))
    request = last_request(server)
    assert request["query"].get("key") == API_KEY and "x-goog-api-key" not in request["headers"]


@pytest.mark.parametrize("api", ["openai-responses", "anthropic", "gemini"])
def test_interactive_chat_in_a_native_dialect(server, env, tmp_path, api):
    """A real pty: two turns, the second sent with the first as history, natively."""
    from .conftest import ROOT
    from .pty_helper import Terminal, llmcli_argv, terminal_env

    conv = tmp_path / "conv.json"
    environ = terminal_env(env, LLMCLI_HISTORY=str(tmp_path / "history"))
    term = Terminal(llmcli_argv("chat", "-i", "--conversation", str(conv)), environ,
                    cwd=str(ROOT))
    try:
        term.expect("chatting with")
        term.expect("> ")
        for text in ("first turn", "second turn"):
            term.send(text + "\r")
            term.expect(text)
            assert reply_for(user(text)) in term.expect("> ")
        term.send("\x04")
    finally:
        term.close()
    sent = last_request(server)
    assert sent["path"].startswith(NATIVE_PATHS[api].split(":")[0])
    assert [m["content"] for m in json.loads(conv.read_text())] == [
        "first turn", reply_for(user("first turn")), "second turn",
        reply_for(user("second turn"))]


@pytest.fixture(scope="module")
def leaky_server() -> Any:
    """Echoes the raw key into every error body and every x-request-id."""
    with MockOpenAIServer(api_key=API_KEY, echo_key=True) as srv:
        yield srv


@pytest.mark.parametrize("args", [
    ["chat", "--json", "hi"], ["stream", "--json", "hi"], ["models", "--json"],
    ["chat", "--json", "--retries", "0", "#fault:500 x"], ["chat", "-m", "nope", "x"]])
def test_a_server_that_echoes_the_key_never_gets_it_shown(leaky_server, env, api, args,
                                                          tmp_path):
    log = tmp_path / "debug.log"
    leaky = dict(env, LLMCLI_BASE_URL=base_url(leaky_server, api))
    done = run_cli("-v", "--debug", "--log-file", str(log), *args, env=leaky)
    everything = done.stdout + done.stderr + log.read_text()
    assert API_KEY not in everything
    if args[0] != "models":   # models shows no request id: nothing echoed to mask
        assert "sk-...WXYZ" in everything   # the echo is there, masked


def test_a_wrong_key_echoed_back_is_masked(leaky_server, env, api):
    wrong = "sk-wrong-key-abcdefghijkl5678"
    leaky = dict(env, LLMCLI_BASE_URL=base_url(leaky_server, api), LLMCLI_API_KEY=wrong)
    done = run_cli("chat", "--json", "hi", env=leaky)
    assert done.returncode == 4
    assert wrong not in done.stdout + done.stderr and "sk-...5678" in done.stderr


@pytest.mark.parametrize("where", ["before", "after", "equals"])
def test_the_api_flag_stands_anywhere_and_beats_the_environment(server, where):
    """`--api` is global, and may be typed after the command like -v."""
    flag = ["--api=anthropic"] if where == "equals" else ["--api", "anthropic"]
    args = flag + ["chat", "hi"] if where == "before" else ["chat", "hi", *flag]
    environ = dict(os.environ, LLMCLI_API="gemini", LLMCLI_BASE_URL=server.base_url,
                   LLMCLI_API_KEY=API_KEY, LLMCLI_MODEL="test-model")
    done = run_cli(*args, env=environ)
    assert done.returncode == 0, done.stderr
    assert last_request(server)["path"] == "/v1/messages"
