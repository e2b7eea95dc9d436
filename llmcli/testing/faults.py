"""Simulated failures: the fault spec language and the book that decides when to fail.

Spec grammar (the part after ``#fault:``)::

    spec   := kind [ "@" retry ] [ "*" count ]
    kind   := STATUS (3 digits) | hang | drop | dropmid | nonjson | html | plain
              | detail | streamerror
    retry  := SECONDS            -> Retry-After: SECONDS
            | "ms:" MILLISECONDS -> retry-after-ms: MILLISECONDS
            | "date:" SECONDS    -> Retry-After: <HTTP-date SECONDS from now>
    count  := N                  -> fail only the first N times this body is seen

Faults queued through ``POST /_control/faults`` use the same ``Fault`` type and
take precedence over directives.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from time import time
from typing import Any

KINDS = ("status", "hang", "drop", "dropmid", "nonjson", "html", "plain", "detail", "streamerror")
_SPEC = re.compile(
    r"(?P<kind>\d{3}|[a-z]+)"
    r"(?:@(?P<retry>ms:\d+|date:\d+|\d+(?:\.\d+)?))?"
    r"(?:\*(?P<count>\d+))?"
)

# (type, code, message) of the OpenAI-shaped body for a status fault; other
# statuses fall back to the reason phrase with a generic type.
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request (simulated by the llmcli test server)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (simulated)."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported (simulated)."),
    404: ("invalid_request_error", "not_found", "Not found (simulated)."),
    408: ("invalid_request_error", "timeout", "Request timed out (simulated)."),
    409: ("invalid_request_error", "conflict", "Conflict (simulated)."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests (simulated by the llmcli test server)."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that! (simulated)"),
    502: ("server_error", "bad_gateway", "Bad gateway (simulated)."),
    503: ("server_error", "service_unavailable",
          "The engine is currently overloaded, please try again later. (simulated)"),
    504: ("server_error", "timeout", "Gateway timeout (simulated)."),
}

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
FASTAPI_422 = json.dumps({"detail": [{
    "loc": ["body", "messages"],
    "msg": "field required (simulated by the llmcli test server)",
    "type": "value_error.missing",
}]}).encode()


class FaultError(ValueError):
    """A fault spec or a queued fault could not be understood."""


@dataclass(frozen=True)
class Fault:
    """One kind of failure, with its Retry-After form and how often it fires."""

    kind: str
    status: int = 0
    retry_after: str | None = None       # seconds, sent verbatim
    retry_after_ms: int | None = None
    retry_after_date: int | None = None  # seconds from the moment of sending
    count: int | None = None             # None: permanent

    def retry_headers(self) -> bytes:
        """The Retry-After style header lines of this fault, ready to send."""
        lines = b""
        if self.retry_after is not None:
            lines += b"retry-after: " + self.retry_after.encode() + b"\r\n"
        if self.retry_after_ms is not None:
            lines += b"retry-after-ms: %d\r\n" % self.retry_after_ms
        if self.retry_after_date is not None:
            date = formatdate(time() + self.retry_after_date, usegmt=True)
            lines += b"retry-after: " + date.encode() + b"\r\n"
        return lines


def parse_fault(spec: str) -> Fault:
    """Parse the argument of a ``#fault:`` directive; raises ``FaultError``."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise FaultError(f"unknown fault spec {spec!r}")
    kind, retry, count = match.group("kind", "retry", "count")
    status = 0
    if kind.isdigit():
        kind, status = "status", int(kind)
        if not 100 <= status <= 599:
            raise FaultError(f"fault status {status} is not an HTTP status")
    elif kind not in KINDS or kind == "status":
        raise FaultError(f"unknown fault kind {kind!r}; expected a status or one of {KINDS[1:]}")
    options: dict[str, Any] = {}
    if retry is not None:
        form, _, value = retry.rpartition(":")
        key = {"": "retry_after", "ms": "retry_after_ms", "date": "retry_after_date"}[form]
        options[key] = value if form == "" else int(value)
    return Fault(kind, status, count=int(count) if count is not None else None, **options)


def _int_field(entry: dict[str, Any], name: str, default: int | None) -> int | None:
    """Read an optional non-negative integer field of a queued fault."""
    value = entry.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise FaultError(f"fault field {name!r} must be a non-negative integer")
    return value


def fault_from_json(entry: Any) -> Fault:
    """Build a queued fault from ``{"status": 429, "retry_after": 1, "count": 2}``-like JSON."""
    if not isinstance(entry, dict):
        raise FaultError("each fault must be an object")
    status = _int_field(entry, "status", 0) or 0
    kind = entry.get("kind", "status" if status else None)
    if kind not in KINDS:
        raise FaultError(f"fault kind must be one of {KINDS}, or give a status")
    if kind == "status" and not 100 <= status <= 599:
        raise FaultError("a status fault needs an HTTP status")
    retry_after = entry.get("retry_after")
    if retry_after is not None and (isinstance(retry_after, bool)
                                    or not isinstance(retry_after, (int, float, str))):
        raise FaultError("fault field 'retry_after' must be a number or a string")
    return Fault(
        kind, status,
        retry_after=None if retry_after is None else str(retry_after),
        retry_after_ms=_int_field(entry, "retry_after_ms", None),
        retry_after_date=_int_field(entry, "retry_after_date", None),
        count=_int_field(entry, "count", 1),
    )


def error_body(message: str, type_: str, param: str | None = None,
               code: str | None = None) -> bytes:
    """An OpenAI-shaped error body."""
    error = {"message": message, "type": type_, "param": param, "code": code}
    return json.dumps({"error": error}).encode()


def status_error_body(status: int) -> bytes:
    """The OpenAI-shaped body a status fault answers with."""
    known = _STATUS_ERRORS.get(status)
    if known is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        type_ = "server_error" if status >= 500 else "invalid_request_error"
        known = (type_, None, f"{phrase} (simulated by the llmcli test server).")
    type_, code, message = known
    return error_body(message, type_, None, code)


class FaultBook:
    """Decides which fault, if any, applies to a chat completion request.

    Queued faults come first, in order, each for its ``count`` requests. A
    directive fault with a count fires for the first ``count`` sightings of the
    exact request body; without a count it always fires.
    """

    def __init__(self) -> None:
        self._queue: deque[list[Any]] = deque()  # [fault, remaining]
        self._seen: dict[bytes, int] = {}

    def reset(self) -> None:
        """Forget queued faults and all per-body counters."""
        self._queue.clear()
        self._seen.clear()

    def enqueue(self, faults: list[Fault]) -> None:
        """Queue faults for the next chat completion requests, in order."""
        self._queue.extend([fault, fault.count or 1] for fault in faults)

    @property
    def queued(self) -> int:
        """How many requests the queue will still fail."""
        return sum(remaining for _, remaining in self._queue)

    def take_queued(self) -> Fault | None:
        """The queued fault for this request, consuming one use of it."""
        if not self._queue:
            return None
        entry = self._queue[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self._queue.popleft()
        return entry[0]

    def fires(self, fault: Fault, body: bytes) -> bool:
        """Whether a directive fault applies to this sighting of ``body``."""
        if fault.count is None:
            return True
        key = hashlib.sha256(body).digest()
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return seen < fault.count
