"""API dialects: one module per wire protocol, behind one :class:`Dialect` contract.

llmcli's own request is canonical: an OpenAI Chat Completions body (``model``,
``messages`` in the chat shape with text/image_url/file parts, sampling params, extra
fields, ``response_format``). A dialect turns it into its API's HTTP request, and the
API's response, stream events and error bodies back into llmcli's types. Retry,
timeouts, budgets, redaction, SSE framing and the batch engine never look at which
dialect is in use. Adding a dialect is one module here plus one line in ``DIALECTS``.

Modules are imported on first use only: ``openai_chat`` by the clients, the native
ones when a profile or ``--api`` names them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol, Sequence

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..chat import ChatResult

DEFAULT_API = "openai-chat"


@dataclass(frozen=True)
class Spec:
    """Where a dialect lives and how it authenticates unless the profile says otherwise."""

    module: str
    base_url: str
    auth_header: str
    auth_scheme: str
    key_env: str = "OPENAI_API_KEY"    # where the key is when no setting names one


# name -> module and defaults; the only table that knows every dialect.
DIALECTS: dict[str, Spec] = {
    "openai-chat": Spec("openai_chat", "https://api.openai.com/v1", "Authorization", "Bearer"),
    "openai-responses": Spec("openai_responses", "https://api.openai.com/v1", "Authorization",
                             "Bearer"),
    "anthropic": Spec("anthropic", "https://api.anthropic.com/v1", "x-api-key", "",
                      "ANTHROPIC_API_KEY"),
    "gemini": Spec("gemini", "https://generativelanguage.googleapis.com/v1beta",
                   "x-goog-api-key", "", "GEMINI_API_KEY"),
}


@dataclass
class HTTPRequest:
    """What a dialect asks the transport to send: the path is relative to base_url;
    ``headers`` and ``query`` come on top of the profile's (which win)."""

    method: str
    path: str
    body: Optional[dict[str, Any]] = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


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


_loaded: dict[str, Dialect] = {}


def names() -> Sequence[str]:
    """The dialect names ``api:`` and ``--api`` accept."""
    return tuple(DIALECTS)


def spec(name: str) -> Spec:
    """The table entry for ``name``; :class:`ConfigError` for an unknown one."""
    found = DIALECTS.get(name)
    if found is None:
        raise ConfigError(f"unknown api {name!r} (one of: {', '.join(DIALECTS)})", key="api")
    return found


def get_dialect(name: str = DEFAULT_API) -> Dialect:
    """The dialect called ``name``, its module imported on first use."""
    dialect = _loaded.get(name)
    if dialect is None:
        module = importlib.import_module(f".{spec(name).module}", __name__)
        dialect = _loaded[name] = module.DIALECT
    return dialect
