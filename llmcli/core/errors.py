"""Errors raised by the llmcli core.

Every class carries structured fields, never a message to be parsed later::

    LLMCLIError
    ├── ConfigError                 bad config file, unknown key, missing API key
    ├── BusyError                   another llmcli is writing the same file
    ├── FileWriteError              a file could not be written: disk full, I/O error
    └── APIError                    anything that went wrong talking to the API
        ├── APIStatusError          the server answered with an error status
        │   ├── BadRequestError         400, 422
        │   ├── AuthenticationError     401
        │   ├── PermissionDeniedError   403
        │   ├── NotFoundError           404
        │   ├── RateLimitError          429
        │   └── ServerError             5xx
        ├── InvalidResponseError    a 2xx that is not what the API promises, or an
        │                           error object sent inside a stream
        ├── SchemaValidationError   a reply that is not JSON of the --schema's shape
        └── APIConnectionError      no answer: refused, reset, dropped
            ├── APITimeoutError     connect/read timeout or the total budget spent
            └── UnreachableError    a connection no retry can fix: nothing listening
                                    on this machine, http/https mixed up, a failed
                                    certificate check (never retried; stops a batch)

The one place that maps an HTTP status to a class is :func:`status_error`.
"""

from __future__ import annotations

import json
from typing import Any, Optional

_MAX_MESSAGE = 300


class LLMCLIError(Exception):
    """Base of every error llmcli raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(LLMCLIError):
    """The settings are wrong: a broken file, an unknown key, a missing API key."""

    def __init__(self, message: str, *, path: Optional[str] = None,
                 key: Optional[str] = None, line: Optional[int] = None) -> None:
        super().__init__(message)
        self.path, self.key, self.line = path, key, line


class BusyError(LLMCLIError):
    """Another llmcli holds the lock of a file this command must write (a batch
    output, a conversation): two writers would interleave or lose results."""

    def __init__(self, message: str, *, path: str, holder: Optional[int] = None) -> None:
        super().__init__(message)
        self.path, self.holder = path, holder


class FileWriteError(LLMCLIError):
    """A file llmcli writes could not be written (disk full, I/O error, gone)."""

    def __init__(self, message: str, *, path: str, errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.path, self.errno = path, errno


class APIError(LLMCLIError):
    """Something went wrong talking to the API.

    ``retry_after``: seconds the server asked to wait (``Retry-After``), if it did;
    ``attempts``: how many attempts were made before this error was given up on (set by
    the retry loop, 1 when it never retried). ``retryable`` starts as the class says; a
    stream that already printed part of its reply makes it False."""

    status: Optional[int]
    type: Optional[str]
    code: Optional[str]
    param: Optional[str]
    request_id: Optional[str]
    body: Any
    retry_after: Optional[float]
    attempts: int

    def __init__(self, message: str, *, status: Optional[int] = None,
                 type: Optional[str] = None, code: Optional[str] = None,
                 param: Optional[str] = None, request_id: Optional[str] = None,
                 body: Any = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type, code, param
        self.request_id, self.body = request_id, body
        self.retry_after = retry_after
        self.attempts = 1
        self.retryable = self.__class__.retryable   # an instance field from here on

    def to_dict(self) -> dict[str, Any]:
        """The error as the stable JSON object documented in docs/output.md."""
        return {
            "type": error_kind(self),
            "message": self.message,
            "status": self.status,
            "code": self.code,
            "retryable": self.retryable,
            "request_id": self.request_id,
        }


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status."""

    retryable = False


class BadRequestError(APIStatusError):
    """400 or 422: the request is wrong and will stay wrong."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such model or endpoint."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; worth retrying later."""

    retryable = True


class ServerError(APIStatusError):
    """5xx: the server failed; worth retrying."""

    retryable = True


class RetryableStatusError(APIStatusError):
    """408 or 409: not the request's fault, worth retrying."""

    retryable = True


class InvalidResponseError(APIError):
    """A success status whose body is not what the API promises."""


class SchemaValidationError(APIError):
    """A reply that is not JSON, or not JSON of the requested schema's shape (after
    any ``--schema-retries``). ``content`` is the last reply, ``errors`` says why."""

    def __init__(self, message: str, *, content: str = "", errors: Optional[list[str]] = None,
                 attempts: int = 1, request_id: Optional[str] = None) -> None:
        super().__init__(message, request_id=request_id, code="schema_mismatch")
        self.content, self.errors, self.attempts = content, list(errors or []), attempts

    def to_dict(self) -> dict[str, Any]:
        """The stable error object, with the reply and what was wrong with it."""
        return {**super().to_dict(), "errors": self.errors, "content": self.content}


class APIConnectionError(APIError):
    """No usable answer: connection refused, reset or dropped."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """A connect or read timeout, or the total time budget is spent."""


class UnreachableError(APIConnectionError):
    """A connection that no retry can fix (core/diagnose.py): nothing listening on this
    machine, ``http://`` and ``https://`` mixed up, a failed certificate check. Every
    request to the same base URL would fail the same way."""

    retryable = False


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RetryableStatusError,
    409: RetryableStatusError,
    422: BadRequestError,
    429: RateLimitError,
}

_KIND: dict[type[LLMCLIError], str] = {
    ConfigError: "config_error",
    BusyError: "busy",
    FileWriteError: "write_error",
    BadRequestError: "bad_request",
    AuthenticationError: "authentication_error",
    PermissionDeniedError: "permission_denied",
    NotFoundError: "not_found",
    RateLimitError: "rate_limit",
    ServerError: "server_error",
    RetryableStatusError: "api_error",
    APIStatusError: "api_error",
    InvalidResponseError: "invalid_response",
    SchemaValidationError: "schema_validation",
    APITimeoutError: "timeout",
    APIConnectionError: "connection_error",
    APIError: "api_error",
}


def error_kind(exc: LLMCLIError) -> str:
    """The stable machine-readable name of an error's class (`rate_limit`, ...)."""
    for cls in type(exc).__mro__:
        if cls in _KIND:
            return _KIND[cls]
    return "error"


def status_error(status: int, body: bytes, content_type: str = "",
                 request_id: Optional[str] = None) -> APIStatusError:
    """Build the error for an HTTP error response, whatever shape its body has."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIStatusError)
    message, fields, parsed = _describe_body(body, content_type)
    prefix = f"HTTP {status}"
    return cls(f"{prefix}: {message}" if message else prefix, status=status,
               request_id=request_id, body=parsed, **fields)


def _describe_body(body: bytes, content_type: str) -> tuple[str, dict[str, Any], Any]:
    """Find a short human message in an error body: OpenAI's shape, FastAPI's, text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text) if text else None
    except (ValueError, RecursionError):     # not JSON, or nested too deeply to read
        parsed = None
    if isinstance(parsed, list) and len(parsed) == 1:
        parsed = parsed[0]   # Gemini's streaming endpoints wrap the error in a list
    if isinstance(parsed, dict):
        message, fields = _from_json_error(parsed)
        if message:
            return shorten(message), fields, parsed
    if "html" in content_type.lower() or text.lstrip().lower().startswith(("<!doctype", "<html")):
        return _html_title(text) or "the server answered with an HTML page", {}, text
    return shorten(" ".join(text.split())), {}, parsed if parsed is not None else text


def _from_json_error(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """OpenAI `{"error": {...}}` (Anthropic's and Gemini's are alike), `{"error": "text"}`,
    FastAPI `{"detail": ...}`, `{"message"}`."""
    err = obj.get("error")
    if isinstance(err, dict):
        fields = {k: str_or_none(err.get(k)) for k in ("type", "code", "param")}
        if fields["type"] is None:   # Gemini: {"code": 429, "status": "RESOURCE_EXHAUSTED"}
            fields["type"] = str_or_none(err.get("status"))
        return str(err.get("message") or ""), fields
    if isinstance(err, str):
        return err, {}
    detail = obj.get("detail")
    if isinstance(detail, str):
        return detail, {}
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts), {}
    if isinstance(obj.get("message"), str):
        return obj["message"], {}
    return "", {}


def _html_title(text: str) -> str:
    low = text.lower()
    start, end = low.find("<title>"), low.find("</title>")
    if 0 <= start < end:
        return "HTML page: " + " ".join(text[start + 7:end].split())
    return ""


def str_or_none(value: Any) -> Optional[str]:
    """``str(value)``, but None stays None (a server's optional ``code``, ``type``)."""
    return None if value is None else str(value)


def shorten(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Cut a message to one readable line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
