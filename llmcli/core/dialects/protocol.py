"""The contract of an API dialect: what one module in ``core/dialects/`` provides.

Error bodies need no method here: Anthropic's `{"type": "error", "error": {"type",
"message"}}`, Gemini's `{"error": {"code", "message", "status"}}` and OpenAI's are read
by the one status-to-error mapping in ``core/errors.py`` (Gemini's ``status`` becomes the
error's ``type``); in-stream and 200-status errors are raised by each dialect's
``apply``/``parse_response``. A dialect with an unlike error shape would add a method.

Only type checkers and readers import this module (the clients name these types in
annotations alone), so the Protocol classes cost nothing at start-up."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol

from ..chat import ChatResult
from . import HTTPRequest


class StreamFolder(Protocol):
    """Folds one stream's events into the reply's metadata, yielding content deltas."""

    id: Optional[str]
    model: Optional[str]
    finish_reason: Optional[str]
    usage: Optional[dict[str, Any]]
    request_id: Optional[str]
    parts: list[str]
    done: bool          # the API's end-of-stream event was seen

    def apply(self, data: str, event: Optional[str] = None) -> Optional[str]:
        """Take one SSE event (its data and ``event:`` name); return its content delta.
        Raises an :class:`~llmcli.core.errors.APIError` for an in-stream error."""
        ...

    def result(self, attempts: int = 1) -> "ChatResult":
        """The whole reply once the stream has ended."""
        ...


class Dialect(Protocol):
    """One API's wire protocol. Implementations are stateless singletons."""

    name: str

    def build_request(self, body: Mapping[str, Any], *, stream: bool) -> HTTPRequest:
        """The native request for a canonical chat body."""
        ...

    def parse_response(self, body: bytes, status: int,
                       headers: Mapping[str, str]) -> "ChatResult":
        """A 2xx response body as a :class:`ChatResult` (``raw`` = the API's JSON);
        raises :class:`~llmcli.core.errors.InvalidResponseError` or the mapped error
        for an error object sent with a 2xx."""
        ...

    def stream_state(self, request_id: Optional[str] = None) -> StreamFolder:
        """A fresh folder for one stream."""
        ...

    def models_request(self) -> HTTPRequest:
        """The request that lists models."""
        ...

    def parse_models(self, body: bytes, status: int,
                     headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """Model objects, each with an ``id`` as the user passes it to ``--model``."""
        ...
