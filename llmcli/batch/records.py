"""Output records: one JSON line per input, in llmcli's shape or the Batch API's.

llmcli (``jsonl``), every key always present::

    {"id", "line", "status": "ok"|"error", "content", "finish_reason", "usage",
     "attempts", "latency_ms", "model", "request_id", "cost", "parsed", "error": null|{...}}

OpenAI Batch output (``openai-batch``), what `GET /v1/files/{output}/content` holds::

    {"id": "batch_req_...", "custom_id", "response": {"status_code", "request_id", "body"},
     "error": null}

An HTTP error keeps its status and error body under ``response``; a failure with no
HTTP answer (timeout, dropped connection, a bad input line) has ``response: null`` and
``error: {"code", "message"}``, as the Batch API reports requests it could not run.

Every record also carries ``fingerprint``: 16 hex digits of a hash of the request it
answers, so that ``--resume`` can tell when the input changed under an id (resume.py).

No record holds a secret (the API key, credentials in headers): servers echo keys back
in error messages, bodies and request ids, so every line is masked as a whole, after
encoding, and no field can carry one past the check.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional, Sequence

from ..core.chat import ChatResult
from ..core.errors import APIError, APIStatusError, error_kind
from ..core.options import json_forms, redact
from .reader import Item

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(separators=(",", ":")).encode


def encode_line(record: dict[str, Any], secrets: Sequence[str] = ()) -> bytes:
    """One record as a UTF-8 JSON line, ``secrets`` (as :func:`json_forms` gives them)
    masked. A lone surrogate (which a server can send as ``\\ud800``) cannot be UTF-8:
    such a record is written with ASCII escapes."""
    text = _encode(record)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        text = _encode_ascii(record)
        data = text.encode("ascii")
    if secrets and any(secret in text for secret in secrets):
        return (redact(text, list(secrets)) + "\n").encode("utf-8")
    return data + b"\n"


_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def fingerprint(body: Optional[dict[str, Any]]) -> Optional[str]:
    """A short, stable hash of a request body (``None`` for a bad input line): the
    same request gives the same fingerprint in every run, on every machine."""
    if body is None:
        return None
    data = _canonical(body).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def fingerprint_of(record: Any) -> Optional[str]:
    """The fingerprint a parsed record carries, if it has one."""
    value = record.get("fingerprint") if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


def input_error(item: Item) -> dict[str, Any]:
    """The error object of a line that could not be sent."""
    return {"type": "invalid_input", "message": item.error, "status": None, "code": None,
            "retryable": False, "request_id": None}


class _Shape:
    """What both record shapes share: every line goes out with the secrets masked."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self._secrets = json_forms(secrets)

    def _line(self, record: dict[str, Any]) -> bytes:
        return encode_line(record, self._secrets)


class JsonlRecords(_Shape):
    """llmcli's own record shape."""

    name = "jsonl"

    def ok(self, item: Item, result: ChatResult, attempts: int, latency_ms: int,
           cost: Optional[float] = None, parsed: Any = None) -> bytes:
        """The record of a reply."""
        return self._line({
            "id": item.id, "line": item.line, "status": "ok", "content": result.content,
            "finish_reason": result.finish_reason, "usage": result.usage, "attempts": attempts,
            "latency_ms": latency_ms, "model": result.model, "request_id": result.request_id,
            "cost": _usd(cost), "parsed": parsed, "error": None,
            "fingerprint": fingerprint(item.body)})

    def error(self, item: Item, exc: Optional[APIError], attempts: int, latency_ms: int,
              cost: Optional[float] = None) -> bytes:
        """The record of a failure; ``exc`` is ``None`` for a bad input line."""
        return self._line({
            "id": item.id, "line": item.line, "status": "error", "content": None,
            "finish_reason": None, "usage": None, "attempts": attempts, "latency_ms": latency_ms,
            "model": None, "request_id": exc.request_id if exc else None,
            "cost": _usd(cost), "parsed": None,
            "error": exc.to_dict() if exc else input_error(item),
            "fingerprint": fingerprint(item.body)})

    @staticmethod
    def classify(obj: Any) -> Optional[tuple[str, bool]]:
        """(id, succeeded) of a record in this shape, else ``None``."""
        if isinstance(obj, dict) and "status" in obj and isinstance(obj.get("id"), str):
            return obj["id"], obj["status"] == "ok"
        return None


class BatchRecords(_Shape):
    """The OpenAI Batch API's output shape."""

    name = "openai-batch"

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__(secrets)
        self._prefix = "batch_req_" + os.urandom(6).hex()   # unique across resumed runs
        self._count = 0

    def _next_id(self) -> str:
        self._count += 1
        return "%s%08x" % (self._prefix, self._count)

    def ok(self, item: Item, result: ChatResult, attempts: int, latency_ms: int,
           cost: Optional[float] = None, parsed: Any = None) -> bytes:
        """The record of a reply: the whole response body, as the Batch API keeps it."""
        return self._line({
            "id": self._next_id(), "custom_id": item.id,
            "response": {"status_code": 200, "request_id": result.request_id, "body": result.raw},
            "error": None, "fingerprint": fingerprint(item.body)})

    def error(self, item: Item, exc: Optional[APIError], attempts: int, latency_ms: int,
              cost: Optional[float] = None) -> bytes:
        """An HTTP error keeps its status and body; anything else goes under ``error``."""
        if isinstance(exc, APIStatusError) and exc.status:
            response = {"status_code": exc.status, "request_id": exc.request_id,
                        "body": exc.body if isinstance(exc.body, dict) else _error_body(exc)}
            return self._line({"id": self._next_id(), "custom_id": item.id,
                                "response": response, "error": None,
                                "fingerprint": fingerprint(item.body)})
        code = error_kind(exc) if exc else "invalid_input"
        message = exc.message if exc else item.error
        return self._line({"id": self._next_id(), "custom_id": item.id, "response": None,
                            "error": {"code": code, "message": message},
                            "fingerprint": fingerprint(item.body)})

    @staticmethod
    def classify(obj: Any) -> Optional[tuple[str, bool]]:
        """(custom_id, succeeded) of a Batch output line, else ``None``."""
        if not (isinstance(obj, dict) and "response" in obj and isinstance(obj.get("custom_id"), str)):
            return None
        response = obj["response"]
        status = response.get("status_code") if isinstance(response, dict) else None
        ok = isinstance(status, int) and 200 <= status < 300 and not obj.get("error")
        return obj["custom_id"], ok


def _usd(cost: Optional[float]) -> Optional[float]:
    return None if cost is None else round(cost, 10)


def _error_body(exc: APIError) -> dict[str, Any]:
    return {"error": {"message": exc.message, "type": exc.type or error_kind(exc),
                      "param": exc.param, "code": exc.code}}


def records_for(name: str, secrets: Sequence[str] = ()) -> Any:
    """The record writer for an ``--output-format``; ``secrets`` never reach a line."""
    return BatchRecords(secrets) if name == "openai-batch" else JsonlRecords(secrets)


def shape_of(obj: Any) -> Optional[str]:
    """Which output format a parsed record is in, if any."""
    for cls in (JsonlRecords, BatchRecords):
        if cls.classify(obj) is not None:
            return cls.name
    return None
