"""The Google Gemini API: `/v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse` and `GET /v1beta/models`, with the key in
``x-goog-api-key`` or the ``key`` query parameter. Requests may use camelCase or
snake_case field names, as the real API accepts both."""

from __future__ import annotations

import os
from itertools import count
from typing import TYPE_CHECKING, Any, Iterator

from ..content import Answer
from ..plans import Plan, Reply, Request
from ..validation import RequestError
from .base import PARTIAL_DELTAS, Call, NativeAPI, dumps, json_reply, query_of

if TYPE_CHECKING:
    from ..app import App

PREFIX = "/v1beta/models"
V1 = "/v1/models"   # Gemini's stable version; shared with OpenAI's path, told apart below
_ID = os.urandom(4).hex()
_ids = count(1)
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
          503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
FINISH = {"stop": "STOP", "length": "MAX_TOKENS"}


def field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field by either of its names."""
    return obj.get(camel, obj.get(snake))


def canonical_messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``systemInstruction`` and ``contents`` as chat messages."""
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        raise RequestError(400, "* GenerateContentRequest.contents: contents is not specified")
    out: list[dict[str, Any]] = []
    system = field(payload, "systemInstruction", "system_instruction")
    if isinstance(system, dict):
        out.append({"role": "system", "content": _parts(system.get("parts"), "system")})
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
            raise RequestError(400, f"* GenerateContentRequest.contents[{i}].parts: "
                                    "contents.parts must not be empty.")
        role = "assistant" if content.get("role") == "model" else "user"
        out.append({"role": role, "content": _parts(content["parts"], f"contents[{i}]")})
    return out


def _parts(parts: Any, where: str) -> list[dict[str, Any]]:
    """Parts as canonical text parts (media parts kept for the token count only)."""
    out = []
    for j, part in enumerate(parts or []):
        if not isinstance(part, dict):
            raise RequestError(400, f"* {where}.parts[{j}]: Invalid value")
        if isinstance(part.get("text"), str):
            out.append({"type": "text", "text": part["text"]})
        elif not any(k in part for k in ("inlineData", "inline_data", "fileData", "file_data",
                                          "functionCall", "functionResponse")):
            raise RequestError(400, f"* {where}.parts[{j}]: a part needs data")
    return out


class GeminiAPI(NativeAPI):
    """Gemini API shapes."""

    name = "gemini"
    bad_key = "API key not valid. Please pass a valid API key."

    def matches(self, request: Request) -> bool:
        """Anything under `/v1beta/models`; under `/v1/models` what carries a Google
        key or a `:method` (the rest is OpenAI's model list)."""
        path = request.path
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return True
        return (path == V1 or path.startswith(V1 + "/")) and (
            ":" in path or "x-goog-api-key" in request.headers or "key=" in request.query)

    def presented_key(self, request: Request) -> str:
        """``x-goog-api-key`` or ``?key=``."""
        return request.headers.get("x-goog-api-key") or query_of(request).get("key", "")

    def error(self, status: int, message: str, headers: bytes = b"") -> Reply:
        """`{"error": {"code", "message", "status"}}`."""
        kind = STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return json_reply({"error": {"code": status, "message": message, "status": kind}},
                          status, headers)

    def route(self, app: "App", request: Request) -> tuple[Plan, int]:
        """Model list, one model, or `{model}:{method}`."""
        rest = _model_part(request.path)
        name, _, method = rest.partition(":")
        if not method:
            if request.method != "GET":
                raise RequestError(404, f"Method not found: {request.method} {request.path}")
            return self.models(app, name), 0
        if request.method != "POST" or method not in ("generateContent",
                                                      "streamGenerateContent"):
            raise RequestError(404, f"Method not found: {method}")
        return self.chat(app, request)

    def models(self, app: "App", name: str) -> Reply:
        """The model list, or one model."""
        objects = [{"name": f"models/{m}", "version": "001", "displayName": m,
                    "description": "llmcli test model", "inputTokenLimit": 1048576,
                    "outputTokenLimit": 8192,
                    "supportedGenerationMethods": ["generateContent", "countTokens"]}
                   for m in app.config.models]
        if not name:
            return json_reply({"models": objects})
        found = [o for o in objects if o["name"] == f"models/{name}"]
        if not found:
            raise RequestError(404, f"models/{name} is not found for API version v1beta")
        return json_reply(found[0])

    def schema(self, payload: dict[str, Any]) -> Any:
        """``generationConfig.responseJsonSchema`` (or the older ``responseSchema``)."""
        config = payload.get("generationConfig") or {}
        return config.get("responseJsonSchema") or config.get("responseSchema")

    def read_call(self, payload: dict[str, Any], request: Request) -> Call:
        """The model from the path, the turns, ``maxOutputTokens``, the method."""
        rest = _model_part(request.path)
        model, _, method = rest.partition(":")
        config = field(payload, "generationConfig", "generation_config")
        cap = field(config, "maxOutputTokens", "max_output_tokens") \
            if isinstance(config, dict) else None
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise RequestError(400, "* GenerateContentRequest.generation_config."
                                    "max_output_tokens: must be a positive integer")
        stream = method == "streamGenerateContent"
        if stream and query_of(request).get("alt") != "sse":
            raise RequestError(400, "this test server streams only with alt=sse")
        return Call(model, canonical_messages(payload), cap, stream)

    def chunk(self, call: Call, answer: Answer, rid: str, text: str,
              last: bool) -> dict[str, Any]:
        """A GenerateContentResponse: a whole reply, or one stream chunk."""
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                     "index": 0}
        p, c = answer.prompt_tokens, answer.completion_tokens
        usage = {"promptTokenCount": p, "totalTokenCount": p}
        if last:
            candidate["finishReason"] = FINISH[answer.finish_reason]
            usage = {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": call.model,
                "responseId": rid}

    def body(self, call: Call, answer: Answer) -> bytes:
        """A whole GenerateContentResponse."""
        return dumps(self.chunk(call, answer, _rid(), answer.content, True)).encode()

    def events(self, call: Call, answer: Answer, partial: bool) -> Iterator[bytes]:
        """One chunk per piece; the last carries finishReason and the usage."""
        rid = _rid()
        pieces = answer.pieces[:PARTIAL_DELTAS] if partial else answer.pieces or [""]
        head = (b'data: {"candidates":[{"content":{"parts":[{"text":')
        tail = (b'}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":%d,'
                b'"totalTokenCount":%d},"modelVersion":%s,"responseId":"%s"}\r\n\r\n') % (
            answer.prompt_tokens, answer.prompt_tokens, dumps(call.model).encode(), rid.encode())
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            if i == last and not partial:
                yield b"data: " + dumps(self.chunk(call, answer, rid, piece, True)).encode() \
                    + b"\r\n\r\n"
            else:
                yield head + dumps(piece).encode() + tail

    def error_event(self) -> bytes:
        """An error object sent as a chunk."""
        return b"data: " + dumps({"error": {"code": 503, "message": "The model is overloaded. "
                                            "(simulated stream error)",
                                            "status": "UNAVAILABLE"}}).encode() + b"\r\n\r\n"


def _model_part(path: str) -> str:
    """`NAME:method` after `/v1beta/models/` or `/v1/models/`."""
    return path.split("/models", 1)[1].lstrip("/")


def _rid() -> str:
    return "%s%08d" % (_ID, next(_ids))
