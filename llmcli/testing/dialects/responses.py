"""The OpenAI Responses API: `POST /v1/responses`, JSON or `response.*` events."""

from __future__ import annotations

import os
from itertools import count
from time import time
from typing import TYPE_CHECKING, Any, Iterator

from ..content import Answer
from ..faults import error_body
from ..plans import Plan, Reply, Request
from ..validation import RequestError
from .base import PARTIAL_DELTAS, Call, NativeAPI, dumps, named_event, require_int

if TYPE_CHECKING:
    from ..app import App

PATH = "/v1/responses"
_PREFIX = os.urandom(6).hex()
_ids = count(1)
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
          404: "invalid_request_error", 429: "requests"}


def _id(kind: str) -> str:
    return "%s_%s%010d" % (kind, _PREFIX, next(_ids))


def canonical_messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``instructions`` and ``input`` as chat messages (parts keep their ``text``)."""
    raw = payload.get("input")
    if raw is None:
        raise RequestError(400, "Missing required parameter: 'input'.", "input",
                           "missing_required_parameter")
    messages: list[dict[str, Any]] = []
    if isinstance(payload.get("instructions"), str):
        messages.append({"role": "system", "content": payload["instructions"]})
    if isinstance(raw, str):
        return messages + [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise RequestError(400, "Invalid type for 'input': expected a string or an array.",
                           "input", "invalid_type")
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "content" not in item:
            raise RequestError(400, f"Invalid 'input[{i}]': expected a message item.",
                               f"input[{i}]", "invalid_value")
        messages.append({"role": item.get("role", "user"), "content": item["content"]})
    return messages


class ResponsesAPI(NativeAPI):
    """Responses API shapes."""

    name = "openai-responses"
    bad_key = "Incorrect API key provided."

    def matches(self, request: Request) -> bool:
        """`/v1/responses`."""
        return request.path == PATH

    def presented_key(self, request: Request) -> str:
        """``Authorization: Bearer KEY``."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""

    def error(self, status: int, message: str, headers: bytes = b"") -> Reply:
        """OpenAI's `{"error": {message, type, param, code}}`."""
        kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return Reply(status, error_body(message, kind), headers=headers)

    def route(self, app: "App", request: Request) -> tuple[Plan, int]:
        """Only POST."""
        if request.method != "POST":
            raise RequestError(405, f"Invalid method for URL ({request.method} {PATH}).")
        return self.chat(app, request)

    def schema(self, payload: dict[str, Any]) -> Any:
        """``text.format.schema`` when ``text.format.type`` is ``json_schema``."""
        fmt = (payload.get("text") or {}).get("format") or {}
        return fmt.get("schema") if fmt.get("type") == "json_schema" else None

    def read_call(self, payload: dict[str, Any], request: Request) -> Call:
        """``model``, ``input``/``instructions``, ``max_output_tokens``, ``stream``."""
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "Missing required parameter: 'model'.", "model")
        return Call(model, canonical_messages(payload),
                    require_int(payload, "max_output_tokens"), payload.get("stream") is True)

    def response(self, call: Call, answer: Answer, rid: str, mid: str,
                 status: str = "completed") -> dict[str, Any]:
        """A Response object; ``status`` in_progress has no output yet."""
        cut = answer.finish_reason == "length"
        done = status != "in_progress"
        final = "incomplete" if cut and done else status
        p, c = answer.prompt_tokens, answer.completion_tokens
        return {
            "id": rid, "object": "response", "created_at": int(time()), "status": final,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut and done else None,
            "instructions": None, "max_output_tokens": call.max_tokens, "model": call.model,
            "output": [self.item(mid, answer.content)] if done else [],
            "parallel_tool_calls": True, "temperature": 1.0, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "text": {"format": {"type": "text"}},
            "usage": {"input_tokens": p, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": c, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": p + c} if done else None}

    @staticmethod
    def item(mid: str, text: str, status: str = "completed") -> dict[str, Any]:
        """The assistant message output item."""
        content = [] if status == "in_progress" else [_part(text)]
        return {"id": mid, "type": "message", "status": status, "role": "assistant",
                "content": content}

    def body(self, call: Call, answer: Answer) -> bytes:
        """A whole Response."""
        return dumps(self.response(call, answer, _id("resp"), _id("msg"))).encode()

    def events(self, call: Call, answer: Answer, partial: bool) -> Iterator[bytes]:
        """created, in_progress, item and part added, deltas, the dones, completed."""
        rid, mid, seq = _id("resp"), _id("msg"), count()
        start = self.response(call, answer, rid, mid, "in_progress")
        yield _ev("response.created", seq, response=start)
        yield _ev("response.in_progress", seq, response=start)
        yield _ev("response.output_item.added", seq, output_index=0,
                  item=self.item(mid, "", "in_progress"))
        yield _ev("response.content_part.added", seq, item_id=mid, output_index=0,
                  content_index=0, part=_part(""))
        pieces = answer.pieces[:PARTIAL_DELTAS] if partial else answer.pieces
        head = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",' \
               b'"item_id":"' + mid.encode() + b'","output_index":0,"content_index":0,"delta":'
        for piece in pieces:
            yield (head + dumps(piece).encode() + b',"logprobs":[],"sequence_number":%d}\n\n'
                   % next(seq))
        if partial:
            return
        text = answer.content
        yield _ev("response.output_text.done", seq, item_id=mid, output_index=0,
                  content_index=0, text=text, logprobs=[])
        yield _ev("response.content_part.done", seq, item_id=mid, output_index=0,
                  content_index=0, part=_part(text))
        yield _ev("response.output_item.done", seq, output_index=0, item=self.item(mid, text))
        final = self.response(call, answer, rid, mid)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        yield _ev(kind, seq, response=final)

    def error_event(self) -> bytes:
        """The `error` event."""
        return named_event("error", {"type": "error", "code": "server_error",
                                     "message": "The server had an error while processing "
                                                "your request. (simulated stream error)",
                                     "param": None, "sequence_number": 99})


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _ev(kind: str, seq: Iterator[int], **fields: Any) -> bytes:
    return named_event(kind, {"type": kind, **fields, "sequence_number": next(seq)})
