"""The native dialects against servers that are not the project's own: a small aiohttp
server written here with the quirks proxies and local servers have when they speak
these APIs (no `event:` lines, `data:` without its space, CRLF, keep-alive comments,
missing usage and ids, a `type` left out of an event, snake_case fields, an error body
wrapped in a list, a server that ignores `stream`, a stream closed by the socket)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any, Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from .conftest import run_cli

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def said(text: str) -> list[str]:
    """The reply: "you said:" and the prompt's words, one delta per word."""
    words = ["you", "said:"] + text.split()
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


async def sse(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    """Events with CRLF and no space after `data:`; the socket's close ends the body."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    resp.force_close()
    await resp.prepare(request)
    await resp.write(b": keep-alive\r\n\r\n")
    for event in events:
        await resp.write(event)
    return resp


def data(obj: Any, event: str = "") -> bytes:
    head = f"event:{event}\r\n".encode() if event else b""
    return head + b"data:" + json.dumps(obj).encode() + b"\r\n\r\n"


# Token counts that are not numbers (a proxy's placeholder, an object): counted as 0
ODD_USAGE = {"anthropic": {"input_tokens": "lots", "cache_read_input_tokens": {"n": 1},
                           "output_tokens": 2},
             "gemini": {"promptTokenCount": "x", "candidatesTokenCount": {"a": 1},
                        "thoughtsTokenCount": "n/a", "totalTokenCount": 3}}


# -- Responses: no event lines, no usage, no ids, `[DONE]` at the end ---------------------------

async def responses(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if body.get("model") == "missing":
        return web.Response(status=404, text="no such model")   # plain text
    pieces = said(body["input"][-1]["content"])
    if body["model"] == "bare":   # the message content as a bare string
        return web.json_response({"status": "completed", "output": [
            {"type": "message", "content": "".join(pieces)}]})
    if not body.get("stream") or body["model"] == "no-stream":
        return web.json_response({"status": "completed", "output": [
            {"type": "message", "content": [{"type": "text", "text": "".join(pieces)}]}]})
    if body["model"] == "string-error":   # the error as a bare string
        return await sse(request, [data({"type": "error", "error": "quota used up"})])
    if body["model"] == "no-deltas":   # the whole text only in `response.completed`
        return await sse(request, [data({"type": "response.completed", "response": {
            "status": "completed", "output": [{"type": "message", "content": [
                {"type": "output_text", "text": "".join(pieces)}]}]}})])
    events = [data({"type": "response.output_text.delta", "delta": p}) for p in pieces]
    events.append(data({"type": "response.completed", "response": {"status": "completed"}}))
    return await sse(request, events + [b"data:[DONE]\r\n\r\n"])


# -- Anthropic: `type` only in the event line, no ping, no usage, errors without a type ----------

async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if body.get("model") == "missing":
        return web.json_response({"error": {"message": "model missing not found"}}, status=404)
    pieces = said(body["messages"][-1]["content"])
    odd = ODD_USAGE["anthropic"] if body["model"] == "odd-usage" else None
    if body["model"] == "bare":   # content as a bare string, not a list of blocks
        return web.json_response({"content": "".join(pieces), "stop_reason": "end_turn"})
    if not body.get("stream") or body["model"] == "no-stream":
        return web.json_response({"content": [{"type": "text", "text": "".join(pieces)}],
                                  "stop_reason": "end_turn", "usage": odd})
    events = [data({"message": {"id": "m1", "usage": odd}}, "message_start")]
    if body["model"] == "nested":   # an event too deep for Python's JSON reader
        return await sse(request, events + [b"data:" + b"[" * 100_000 + b"]" * 100_000
                                            + b"\r\n\r\n"])
    events += [data({"index": 0, "delta": {"type": "text_delta", "text": p}},
                    "content_block_delta") for p in pieces]
    events += [data({"delta": {"stop_reason": "end_turn"}}, "message_delta"),
               data({}, "message_stop")]
    return await sse(request, events)


async def anthropic_models(request: web.Request) -> web.Response:
    return web.json_response({"data": [{"id": "claude-peer"}]})   # no has_more, no type


# -- Gemini: snake_case, a last chunk with no parts, no usage, errors wrapped in a list ---------

async def gemini(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["call"].partition(":")
    body = await request.json()
    if model == "missing":
        return web.json_response([{"error": {"code": 404, "message": "models/missing is not "
                                             "found", "status": "NOT_FOUND"}}], status=404)
    pieces = said(body["contents"][-1]["parts"][0]["text"])
    odd = ODD_USAGE["gemini"] if model == "odd-usage" else None
    if model == "linger":   # the whole reply, then the connection held open
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(data({"candidates": [{"content": {"parts": [{"text": "all of it"}]},
                                               "finishReason": "STOP"}]}))
        await asyncio.sleep(4)
        return resp
    if model == "bare":   # parts given as bare strings among the objects
        return web.json_response({"candidates": [{"content": {"parts": [
            pieces[0], {"text": pieces[1]}, "".join(pieces[2:])]}, "finishReason": "STOP"}]})
    if method == "generateContent" or model == "no-stream":
        return web.json_response({"candidates": [{
            "content": {"parts": [{"text": "".join(pieces)}]}, "finish_reason": "STOP"}],
            "usageMetadata": odd})
    events = [data({"candidates": [{"content": {"parts": [{"text": p}], "role": "model"}}]})
              for p in pieces]
    events.append(data({"candidates": [{"content": {"role": "model"},
                                        "finishReason": "STOP"}], "usageMetadata": odd}))
    return await sse(request, events)


async def gemini_models(request: web.Request) -> web.Response:
    return web.json_response({"models": [{"name": "models/gemini-peer"},
                                         {"name": "gemini-bare"}]})


@pytest.fixture(scope="module")
def peer() -> Iterator[str]:
    """The quirky server in a thread of its own; yields its root URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.add_routes([web.post("/v1/responses", responses), web.post("/v1/messages", messages),
                    web.get("/v1/models", anthropic_models),
                    web.post("/v1beta/models/{call}", gemini),
                    web.get("/v1beta/models", gemini_models)])
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


BASES = {"openai-responses": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}


@pytest.fixture(params=list(BASES))
def run(request: pytest.FixtureRequest, peer: str) -> Callable[..., Any]:
    api = request.param
    env = dict(os.environ, LLMCLI_API=api, LLMCLI_BASE_URL=peer + BASES[api],
               LLMCLI_API_KEY="peer-key-0123456789", LLMCLI_MODEL="peer")

    def go(*args: str, **kwargs: Any) -> Any:
        return run_cli(*args, env=env, **kwargs)
    return go


def test_chat_text_and_json(run: Callable[..., Any]) -> None:
    done = run("chat", "hi there")
    assert (done.returncode, done.stdout, done.stderr) == (0, "you said: hi there\n", "")
    obj = json.loads(run("chat", "--json", "hi").stdout)
    assert obj["content"] == "you said: hi" and obj["finish_reason"] == "stop"
    assert obj["usage"] is None and obj["raw"]


def test_stream_text_and_json_with_stdin(run: Callable[..., Any]) -> None:
    done = run("stream", "summarize", input="a b")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "you said: summarize a b\n"
    lines = [json.loads(x) for x in run("stream", "--json", "x y").stdout.splitlines()]
    assert "".join(o["content"] for o in lines if o["type"] == "delta") == "you said: x y"
    assert lines[-1]["type"] == "done" and lines[-1]["finish_reason"] == "stop"


def test_stream_from_a_server_that_ignores_stream(run: Callable[..., Any]) -> None:
    done = run("stream", "-m", "no-stream", "hi")
    assert (done.returncode, done.stdout) == (0, "you said: hi\n"), done.stderr


def test_errors_in_odd_shapes_are_one_line_exit_5(run: Callable[..., Any]) -> None:
    done = run("chat", "-m", "missing", "hi")
    assert done.returncode == 5
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmcli: error: HTTP 404: ")
    assert "not found" in lines[0] or "no such model" in lines[0]
    assert "[{" not in lines[0]   # a list-wrapped error is read, not dumped


def test_models_with_or_without_the_models_prefix(run: Callable[..., Any],
                                                  request: pytest.FixtureRequest) -> None:
    done = run("models")
    assert done.returncode == 0, done.stderr
    gemini = "gemini" in request.node.name
    assert done.stdout == ("gemini-bare\ngemini-peer\n" if gemini else "claude-peer\n")


@pytest.mark.parametrize("run", ['anthropic', 'gemini'], indirect=True)
@pytest.mark.parametrize("command", ["chat", "stream"])
def test_token_counts_that_are_not_numbers_count_zero(run: Callable[..., Any],
                                                      command: str) -> None:
    """(The Responses handler of this peer sends no usage.)"""
    done = run(command, "--json", "-m", "odd-usage", "hi")
    assert done.returncode == 0, done.stderr   # was: unexpected ValueError ... please report
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["usage"]["prompt_tokens"] == 0


@pytest.mark.parametrize("run", ['anthropic'], indirect=True)
def test_an_event_nested_too_deeply_is_one_line_exit_5(run: Callable[..., Any]) -> None:
    """The Anthropic fast path is the one that read it apart."""
    done = run("stream", "-m", "nested", "hi")
    assert done.returncode == 5, done.stderr   # was: unexpected RecursionError, please report
    assert done.stderr == "llmcli: error: a stream event holds JSON nested too deeply to read\n"


@pytest.mark.parametrize("run", ['openai-responses'], indirect=True)
def test_a_responses_stream_with_no_deltas_shows_the_completed_text(
        run: Callable[..., Any]) -> None:
    done = run("stream", "-m", "no-deltas", "hi")
    assert (done.returncode, done.stdout) == (0, "you said: hi\n"), done.stderr   # was: ""
    out = run("stream", "--json", "-m", "no-deltas", "x").stdout
    lines = [json.loads(x) for x in out.splitlines()]
    assert [o["content"] for o in lines if o["type"] == "delta"] == ["you said: x"]


@pytest.mark.parametrize("run", ['openai-responses'], indirect=True)
def test_a_responses_error_given_as_a_string_shows_it(run: Callable[..., Any]) -> None:
    done = run("stream", "-m", "string-error", "hi")
    assert done.returncode == 5   # was: "error in stream: {'type': None, ... 'message': None}"
    assert done.stderr == "llmcli: error: error in stream: quota used up\n"


def test_text_sent_as_bare_strings_is_read(run: Callable[..., Any]) -> None:
    """Content as a string where blocks/parts were documented (Anthropic `content`, a
    Responses message's `content`, Gemini `parts` items): it was an empty reply with
    exit 0 (Anthropic: exit 5)."""
    done = run("chat", "-m", "bare", "hi there")
    assert (done.returncode, done.stdout) == (0, "you said: hi there\n"), done.stderr


@pytest.mark.parametrize("run", ['gemini'], indirect=True)
def test_a_finished_gemini_stream_closed_late_is_a_whole_reply(run: Callable[..., Any]) -> None:
    """Gemini's stream ends at EOF: a server that holds the connection open after the
    chunk with the finish reason made a complete reply exit 6 at --max-time."""
    done = run("stream", "-m", "linger", "--max-time", "1.5", "hi")
    assert (done.returncode, done.stdout) == (0, "all of it\n"), done.stderr
