"""Chat completion responses: bodies, stream events and the plans for faults."""

from __future__ import annotations

import json
import os
from itertools import count
from time import time
from typing import Any, Iterator

from .content import Answer
from .faults import (FASTAPI_422, NGINX_502, Fault, error_body, status_error_body)
from .plans import (SSE_DONE, Drop, Hang, Plan, Reply, Stream, Truncated, sse_event)

FINGERPRINT = "fp_llmcli_test"
# How many content deltas a dropmid or streamerror stream sends before failing.
PARTIAL_DELTAS = 2
# Streams with more deltas than this are rendered lazily (see stream_events).
SHORT_STREAM = 200
_ID_PREFIX = "chatcmpl-" + os.urandom(6).hex()
_ids = count(1)
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_quote = json.encoder.encode_basestring_ascii  # the C quoting function json.dumps uses
_COMPLETION = (
    '{"id":"%s","object":"chat.completion","created":%d,"model":%s,'
    '"system_fingerprint":"' + FINGERPRINT + '","choices":[{"index":0,"message":'
    '{"role":"assistant","content":%s,"refusal":null},"logprobs":null,"finish_reason":"%s"}],'
    '"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}'
)

STREAM_ERROR = {"error": {
    "message": "The server had an error while processing your request. (simulated stream error)",
    "type": "server_error", "param": None, "code": None,
}}


def new_completion_id() -> str:
    """A unique ``chatcmpl-`` id; a counter is cheaper than a uuid per request."""
    return "%s%010d" % (_ID_PREFIX, next(_ids))


def usage(answer: Answer) -> dict[str, int]:
    """The usage object of an answer."""
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def completion_body(model: str, answer: Answer) -> bytes:
    """The JSON body of a non-stream chat completion.

    A template with only the strings quoted is several times faster than
    encoding the whole dict, and this is the benchmark's hot path.
    """
    prompt, completion = answer.prompt_tokens, answer.completion_tokens
    return (_COMPLETION % (
        new_completion_id(), int(time()), _quote(model), _quote(answer.content),
        answer.finish_reason, prompt, completion, prompt + completion,
    )).encode()


class _ChunkWriter:
    """Renders ``chat.completion.chunk`` events sharing one id, model and time.

    The common prefix and suffix are encoded once per stream; only the delta
    is serialised per event.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.head = _dumps({
            "id": new_completion_id(), "object": "chat.completion.chunk",
            "created": int(time()), "model": model, "system_fingerprint": FINGERPRINT,
        })[:-1].encode()
        self.include_usage = include_usage
        self._usage_null = b',"usage":null' if include_usage else b""

    def choice(self, delta: dict[str, object], finish_reason: str | None = None) -> bytes:
        """One event with a single choice carrying ``delta``."""
        choice = b'[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]' % (
            _dumps(delta).encode(), _dumps(finish_reason).encode())
        return sse_event(self.head + b',"choices":' + choice + self._usage_null + b"}")

    def usage(self, answer: Answer) -> bytes:
        """The final usage event: no choices, just the usage."""
        return sse_event(self.head + b',"choices":[],"usage":' + _dumps(usage(answer)).encode()
                         + b"}")


def stream_events(model: str, answer: Answer, include_usage: bool,
                  partial: bool = False) -> Iterator[bytes]:
    """All events of a stream, or with ``partial`` only its first few.

    A generator, so a ``#chunks:100000`` stream is rendered as it is sent
    rather than all at once on the event loop.
    """
    writer = _ChunkWriter(model, include_usage)
    yield writer.choice({"role": "assistant", "content": "", "refusal": None})
    pieces = answer.pieces
    for piece in pieces[:PARTIAL_DELTAS] if partial else pieces:
        yield writer.choice({"content": piece})
    if partial:
        return
    yield writer.choice({}, answer.finish_reason)
    if include_usage:
        yield writer.usage(answer)
    yield SSE_DONE


def _stream(events: Iterator[bytes], answer: Answer, interval: float, **options: Any) -> Stream:
    """A stream plan; short ones become a list the protocol can send at once."""
    if answer.completion_tokens <= SHORT_STREAM:
        return Stream(list(events), interval, **options)
    return Stream(events, interval, **options)


def success_plan(model: str, answer: Answer, stream: bool, include_usage: bool,
                 interval: float) -> Plan:
    """The normal answer, streamed or not."""
    if not stream:
        return Reply(200, completion_body(model, answer))
    return _stream(stream_events(model, answer, include_usage), answer, interval,
                   keepalive=answer.directives.keepalive)


def fault_plan(fault: Fault, model: str, answer: Answer, stream: bool, include_usage: bool,
               interval: float) -> Plan:
    """What the server does instead of answering, for one fault."""
    kind, headers = fault.kind, fault.retry_headers()
    keepalive = answer.directives.keepalive
    if kind == "status":
        return Reply(fault.status, status_error_body(fault.status), headers=headers)
    if kind == "hang":
        return Hang()
    if kind == "drop":
        return Drop()
    if kind == "dropmid":
        if stream:
            return Stream(list(stream_events(model, answer, include_usage, partial=True)),
                          interval, keepalive=keepalive, abort=True, headers=headers)
        return Truncated(Reply(200, completion_body(model, answer), headers=headers))
    if kind == "nonjson":
        return Reply(200, b"not json at all", headers=headers)
    if kind == "html":
        return Reply(502, NGINX_502, b"text/html", headers)
    if kind == "plain":
        return Reply(500, b"Internal Server Error", b"text/plain; charset=utf-8", headers)
    if kind == "detail":
        return Reply(422, FASTAPI_422, headers=headers)
    # streamerror: a non-stream request has no stream to break, so it gets a 500.
    if not stream:
        return Reply(500, error_body(str(STREAM_ERROR["error"]["message"]), "server_error"),
                     headers=headers)
    events = list(stream_events(model, answer, include_usage, partial=True))
    events.append(sse_event(_dumps(STREAM_ERROR).encode()))
    return Stream(events, interval, keepalive=keepalive, headers=headers)
