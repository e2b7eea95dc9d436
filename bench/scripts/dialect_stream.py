"""In-process stream parsing per API dialect: llmcli against the provider's own SDK,
on the same bytes.

    python bench/scripts/dialect_stream.py [DELTAS] [ROUNDS]

For each dialect the test server's own event renderer makes one reply of DELTAS
(default 20,000) content deltas; the bytes are served from memory through
``httpx.MockTransport`` in 64 KiB pieces, so no network and no server is measured:

- ``llmcli``: ``Client.stream_chat(...).batches()`` with ``api=DIALECT``, the whole
  core path (SSE decoding, the dialect's folder, the end-of-stream checks);
- the SDK: ``openai`` (chat.completions and responses, ``stream=True``),
  ``anthropic`` (``messages.create(stream=True)``, its cheapest streaming path) and
  ``google-genai`` (``generate_content_stream``), each iterated to the end.

Rounds are interleaved; prints one JSON object per dialect with the best seconds of
each and the ratio, and checks that both saw the same number of deltas.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

import httpx

from llmcli.core.client import Client
from llmcli.core.options import ClientOptions
from llmcli.testing.content import answer_for
from llmcli.testing.dialects.anthropic import AnthropicAPI
from llmcli.testing.dialects.base import Call
from llmcli.testing.dialects.gemini import GeminiAPI
from llmcli.testing.dialects.responses import ResponsesAPI

PIECE = 65536
ROOT = "http://bench.invalid"
BASES = {"openai-chat": "/v1", "openai-responses": "/v1", "anthropic": "/v1",
         "gemini": "/v1beta"}
MESSAGES = [{"role": "user", "content": "x"}]


def body_for(api: str, deltas: int) -> bytes:
    """The SSE body the test server sends for a reply of ``deltas`` deltas."""
    messages = [{"role": "user", "content": f"#chunks:{deltas}"}]
    answer = answer_for(messages)
    if api == "openai-chat":
        from llmcli.testing.chat import stream_events

        return b"".join(stream_events("test-model", answer, True))
    native = {"openai-responses": ResponsesAPI(), "anthropic": AnthropicAPI(),
              "gemini": GeminiAPI()}[api]
    return b"".join(native.events(Call("test-model", messages, None, True), answer, False))


def transport(pieces: list[bytes], http: Any = httpx) -> Any:
    """A transport that answers every request with ``pieces`` (``http``: httpx, or the
    httpx2 that newer anthropic SDKs require)."""
    def handler(request: Any) -> Any:
        return http.Response(200, headers={"content-type": "text/event-stream"},
                             content=iter(pieces))
    return http.MockTransport(handler)


def llmcli(api: str) -> Callable[[list[bytes]], int]:
    def run(pieces: list[bytes]) -> int:
        options = ClientOptions(base_url=ROOT + BASES[api], api_key="sk-bench", api=api)
        with Client(options, transport=transport(pieces)) as client:
            stream = client.stream_chat({"model": "test-model", "messages": MESSAGES})
            return sum(len(batch) for batch in stream.batches())
    return run


def openai_chat(pieces: list[bytes]) -> int:
    import openai

    client = openai.OpenAI(base_url=ROOT + "/v1", api_key="sk-bench", max_retries=0,
                           http_client=httpx.Client(transport=transport(pieces)))
    return sum(1 for c in client.chat.completions.create(
        model="test-model", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        if c.choices and c.choices[0].delta.content)


def openai_responses(pieces: list[bytes]) -> int:
    import openai

    client = openai.OpenAI(base_url=ROOT + "/v1", api_key="sk-bench", max_retries=0,
                           http_client=httpx.Client(transport=transport(pieces)))
    return sum(1 for e in client.responses.create(model="test-model", input="x", stream=True)
               if e.type == "response.output_text.delta" and e.delta)


def anthropic_sdk(pieces: list[bytes]) -> int:
    import anthropic

    try:
        import httpx2 as http
    except ImportError:   # older SDKs are on httpx
        http = httpx
    client = anthropic.Anthropic(base_url=ROOT, api_key="sk-bench", max_retries=0,
                                 http_client=http.Client(transport=transport(pieces, http)))
    return sum(1 for e in client.messages.create(model="test-model", max_tokens=10,
                                                 messages=MESSAGES,  # type: ignore[arg-type]
                                                 stream=True)
               if e.type == "content_block_delta" and getattr(e.delta, "text", ""))


def gemini_sdk(pieces: list[bytes]) -> int:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=ROOT, api_version="v1beta",
                                httpx_client=httpx.Client(transport=transport(pieces)))
    client = genai.Client(api_key="sk-bench", http_options=options)
    return sum(1 for c in client.models.generate_content_stream(model="test-model",
                                                                contents="x") if c.text)


SDKS: dict[str, Callable[[list[bytes]], int]] = {
    "openai-chat": openai_chat, "openai-responses": openai_responses,
    "anthropic": anthropic_sdk, "gemini": gemini_sdk}


def measure(api: str, deltas: int, rounds: int) -> dict[str, Any]:
    body = body_for(api, deltas)
    pieces = [body[i:i + PIECE] for i in range(0, len(body), PIECE)]
    consumers = {"llmcli": llmcli(api), "sdk": SDKS[api]}
    seen = {name: consume(pieces) for name, consume in consumers.items()}   # warm-up
    best = {name: float("inf") for name in consumers}
    for _ in range(rounds):
        for name, consume in consumers.items():
            started = time.perf_counter()
            consume(pieces)
            best[name] = min(best[name], time.perf_counter() - started)
    return {"api": api, "deltas": seen, "bytes": len(body),
            "llmcli_s": round(best["llmcli"], 4), "sdk_s": round(best["sdk"], 4),
            "ratio": round(best["sdk"] / best["llmcli"], 1)}


def main(deltas: int, rounds: int) -> None:
    for api in SDKS:
        print(json.dumps(measure(api, deltas, rounds)), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 3)
