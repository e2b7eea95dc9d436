"""In-process stream parsing: chunks per second of four consumers of the same bytes.

    python bench/scripts/inproc_stream.py RECORDED_SSE_BODY ROUNDS

The body is a real 20,000-chunk reply recorded from the test server. It is served from
memory through ``httpx.MockTransport`` in 64 KiB pieces (what one socket read holds), so
no network and no server is measured, only each consumer's own work:

- ``llmcli parser``: ``SSEDecoder.feed`` + ``StreamState.apply``, as ChatStream uses them;
- ``llmcli client``: ``Client.stream_chat(...).batches()``, the whole core path;
- ``httpx iter_lines``: a plain ``iter_lines`` + ``json.loads`` loop;
- ``openai SDK``: ``client.chat.completions.create(stream=True)`` iterated.

Rounds are interleaved; prints one JSON object: {name: [seconds per round, ...]}, and
the number of content deltas each consumer saw (they must agree).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable

import httpx

from llmcli.core.chat import StreamState
from llmcli.core.client import Client
from llmcli.core.options import ClientOptions
from llmcli.core.sse import SSEDecoder

PIECE = 65536
URL = "http://bench.invalid/v1"


def transport(pieces: list[bytes]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=iter(pieces))
    return httpx.MockTransport(handler)


def llmcli_parser(pieces: list[bytes]) -> int:
    decoder, state, deltas = SSEDecoder(), StreamState(), 0
    for piece in pieces:
        for event in decoder.feed(piece):
            if event.data == "[DONE]":
                return deltas
            if state.apply(event.data):
                deltas += 1
    return deltas


def llmcli_client(pieces: list[bytes]) -> int:
    options = ClientOptions(base_url=URL, api_key="sk-bench")
    with Client(options, transport=transport(pieces)) as client:
        stream = client.stream_chat({"model": "test-model", "messages": []})
        return sum(len(batch) for batch in stream.batches())


def httpx_iter_lines(pieces: list[bytes]) -> int:
    deltas = 0
    with httpx.Client(transport=transport(pieces)) as client:
        with client.stream("POST", URL + "/chat/completions", json={}) as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                choices = json.loads(data)["choices"]
                if choices and choices[0]["delta"].get("content"):
                    deltas += 1
    return deltas


def openai_sdk(pieces: list[bytes]) -> int:
    import openai

    client = openai.OpenAI(base_url=URL, api_key="sk-bench", max_retries=0,
                           http_client=httpx.Client(transport=transport(pieces)))
    deltas = 0
    for chunk in client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "x"}], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            deltas += 1
    return deltas


CONSUMERS: dict[str, Callable[[list[bytes]], int]] = {
    "llmcli parser": llmcli_parser, "llmcli client": llmcli_client,
    "httpx iter_lines": httpx_iter_lines, "openai SDK": openai_sdk}


def main(path: str, rounds: int) -> None:
    body = open(path, "rb").read()
    pieces = [body[i:i + PIECE] for i in range(0, len(body), PIECE)]
    deltas = {name: consume(pieces) for name, consume in CONSUMERS.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in CONSUMERS}
    for _ in range(rounds):
        for name, consume in CONSUMERS.items():
            started = time.perf_counter()
            consume(pieces)
            times[name].append(time.perf_counter() - started)
    print(json.dumps({"deltas": deltas, "seconds": times}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
