"""llmcli against an OpenAI-compatible server that is not the project's own: a small
aiohttp.web server written here with the quirks real local servers have (SSE without
the space after `data:`, CRLF line ends, keep-alive comments, no usage, no request
ids, FastAPI-style errors, HTTP/1.0-style close-delimited streams)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Iterator

import pytest
from aiohttp import web

from .conftest import run_cli


async def _models(request: web.Request) -> web.Response:
    return web.json_response({"data": [{"id": "llama3.2"}, {"id": "qwen2.5"}]})


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if body.get("model") not in ("llama3.2", "no-stream"):
        return web.json_response({"detail": f"model '{body.get('model')}' not found"}, status=404)
    text = body["messages"][-1]["content"]
    words = ["you", "said:"] + text.split()
    if not body.get("stream") or body["model"] == "no-stream":   # some servers ignore stream
        return web.json_response({"choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant",
                                                           "content": " ".join(words)}}]})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    resp.force_close()          # no chunked encoding, the stream ends when the socket does
    await resp.prepare(request)
    await resp.write(b": keep-alive\r\n\r\n")
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        await resp.write(b"data:" + json.dumps(chunk).encode() + b"\r\n\r\n")
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    await resp.write(b"data:" + json.dumps(done).encode() + b"\r\n\r\ndata:[DONE]\r\n\r\n")
    return resp


@pytest.fixture(scope="module")
def peer() -> Iterator[str]:
    """The peer server in a thread of its own; yields its base URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.add_routes([web.get("/v1/models", _models), web.post("/v1/chat/completions", _chat)])
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


@pytest.fixture
def peer_cli(peer, clean_env):
    import os

    env = dict(os.environ, OPENAI_BASE_URL=peer, LLMCLI_MODEL="llama3.2")   # no key: local

    def run(*args: str, **kwargs):
        return run_cli(*args, env=env, **kwargs)
    return run


def test_chat_text_and_json(peer_cli):
    assert peer_cli("chat", "hi there").stdout == "you said: hi there\n"
    obj = json.loads(peer_cli("chat", "--json", "hi").stdout)
    assert obj["content"] == "you said: hi" and obj["usage"] is None and obj["id"] is None


def test_stream_text_and_json_with_stdin(peer_cli):
    done = peer_cli("stream", "summarize", input="a b")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "you said: summarize a b\n"
    lines = [json.loads(x) for x in peer_cli("stream", "--json", "x y").stdout.splitlines()]
    assert "".join(o.get("content", "") for o in lines if o["type"] == "delta") == "you said: x y"
    assert lines[-1]["type"] == "done" and lines[-1]["finish_reason"] == "stop"


def test_models_text_and_json(peer_cli):
    assert peer_cli("models").stdout == "llama3.2\nqwen2.5\n"
    assert [m["id"] for m in json.loads(peer_cli("models", "--json").stdout)] == ["llama3.2", "qwen2.5"]


def test_fastapi_style_error_is_one_line(peer_cli):
    done = peer_cli("chat", "-m", "gpt-9", "hi")
    assert done.returncode == 5
    assert done.stderr.strip() == "llmcli: error: HTTP 404: model 'gpt-9' not found"


def test_stream_from_a_server_that_ignores_stream_true(peer_cli):
    done = peer_cli("stream", "-m", "no-stream", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "you said: hi\n"
