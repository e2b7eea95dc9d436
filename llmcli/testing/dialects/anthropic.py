"""The Anthropic Messages API: `POST /v1/messages` and `GET /v1/models` with
``x-api-key`` and ``anthropic-version``; JSON or the `message_*` event stream."""

from __future__ import annotations

import os
from itertools import count
from typing import TYPE_CHECKING, Any, Iterator

from ..content import Answer
from ..plans import Plan, Reply, Request
from ..validation import RequestError
from .base import PARTIAL_DELTAS, Call, NativeAPI, dumps, json_reply, named_event, require_int

if TYPE_CHECKING:
    from ..app import App

PATH = "/v1/messages"
MODELS = "/v1/models"
_PREFIX = os.urandom(6).hex()
_ids = count(1)
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
STOP = {"stop": "end_turn", "length": "max_tokens"}


def _id(kind: str) -> str:
    return "%s_%s%010d" % (kind, _PREFIX, next(_ids))


def canonical_messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``system`` and ``messages`` as chat messages (text blocks keep their ``text``)."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "messages: Field required" if messages is None
                           else "messages: at least one message is required")
    out: list[dict[str, Any]] = []
    system = payload.get("system")
    if isinstance(system, list):
        system = " ".join(b.get("text", "") for b in system if isinstance(b, dict))
    if isinstance(system, str):
        out.append({"role": "system", "content": system})
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise RequestError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), (str, list)):
            raise RequestError(400, f"messages.{i}.content: Field required")
        out.append({"role": message["role"], "content": message["content"]})
    return out


class AnthropicAPI(NativeAPI):
    """Anthropic Messages API shapes."""

    name = "anthropic"
    bad_key = "invalid x-api-key"

    def matches(self, request: Request) -> bool:
        """`/v1/messages`, and `/v1/models` asked for the Anthropic way."""
        if request.path == PATH:
            return True
        return request.path.startswith(MODELS) and (
            "anthropic-version" in request.headers or "x-api-key" in request.headers)

    def presented_key(self, request: Request) -> str:
        """``x-api-key: KEY``, or ``Authorization: Bearer KEY`` (newer SDKs send that)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return request.headers.get("x-api-key") or (token.strip() if scheme.lower() == "bearer"
                                                    else "")

    def error(self, status: int, message: str, headers: bytes = b"") -> Reply:
        """`{"type": "error", "error": {"type", "message"}, "request_id"}`."""
        kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        rid = _id("req")
        return json_reply({"type": "error", "error": {"type": kind, "message": message},
                           "request_id": rid}, status,
                          headers + b"request-id: " + rid.encode() + b"\r\n")

    def route(self, app: "App", request: Request) -> tuple[Plan, int]:
        """Messages or models; the version header is required, as by the real API."""
        if not request.headers.get("anthropic-version"):
            raise RequestError(400, "anthropic-version: header is required")
        if request.path == PATH:
            if request.method != "POST":
                raise RequestError(405, f"Method Not Allowed ({request.method} {PATH})")
            return self.chat(app, request)
        if request.method != "GET":
            raise RequestError(405, f"Method Not Allowed ({request.method} {request.path})")
        return self.models(app, request.path[len(MODELS):].lstrip("/")), 0

    def models(self, app: "App", model: str) -> Reply:
        """The model list, or one model."""
        objects = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                    "created_at": "2023-11-14T22:13:20Z"} for m in app.config.models]
        if not model:
            return json_reply({"data": objects, "has_more": False,
                               "first_id": objects[0]["id"] if objects else None,
                               "last_id": objects[-1]["id"] if objects else None})
        found = [o for o in objects if o["id"] == model]
        if not found:
            raise RequestError(404, f"model: {model}")
        return json_reply(found[0])

    def schema(self, payload: dict[str, Any]) -> Any:
        """``output_config.format.schema`` (structured outputs)."""
        fmt = (payload.get("output_config") or {}).get("format") or {}
        return fmt.get("schema") if fmt.get("type") == "json_schema" else None

    def read_call(self, payload: dict[str, Any], request: Request) -> Call:
        """``model``, ``max_tokens`` (required), ``system``/``messages``, ``stream``."""
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "model: Field required")
        max_tokens = require_int(payload, "max_tokens", required=True)
        return Call(model, canonical_messages(payload), max_tokens, payload.get("stream") is True)

    def message(self, call: Call, answer: Answer, mid: str, start: bool = False) -> dict[str, Any]:
        """A Message object; at ``start`` of a stream it has no content yet."""
        return {"id": mid, "type": "message", "role": "assistant", "model": call.model,
                "content": [] if start else [{"type": "text", "text": answer.content}],
                "stop_reason": None if start else STOP[answer.finish_reason],
                "stop_sequence": None,
                "usage": {"input_tokens": answer.prompt_tokens,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                          "output_tokens": 1 if start else answer.completion_tokens}}

    def body(self, call: Call, answer: Answer) -> bytes:
        """A whole Message."""
        return dumps(self.message(call, answer, _id("msg"))).encode()

    def events(self, call: Call, answer: Answer, partial: bool) -> Iterator[bytes]:
        """message_start, a text block with its deltas, message_delta, message_stop."""
        yield named_event("message_start", {"type": "message_start",
                                            "message": self.message(call, answer, _id("msg"),
                                                                    True)})
        yield named_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}})
        yield named_event("ping", {"type": "ping"})
        head = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                b'"delta":{"type":"text_delta","text":')
        for piece in answer.pieces[:PARTIAL_DELTAS] if partial else answer.pieces:
            yield head + dumps(piece).encode() + b"}}\n\n"
        if partial:
            return
        yield named_event("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield named_event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": STOP[answer.finish_reason], "stop_sequence": None},
            "usage": {"output_tokens": answer.completion_tokens}})
        yield named_event("message_stop", {"type": "message_stop"})

    def error_event(self) -> bytes:
        """An `error` event: the API is overloaded."""
        return named_event("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded (simulated stream error)"}})
