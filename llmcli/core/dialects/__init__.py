"""API dialects: one module per wire protocol, behind one :class:`Dialect` contract.

llmcli's own request is canonical: an OpenAI Chat Completions body (``model``,
``messages`` in the chat shape with text/image_url/file parts, sampling params, extra
fields, ``response_format``). A dialect turns it into its API's HTTP request, and the
API's response, stream events and error bodies back into llmcli's types. Retry,
timeouts, budgets, redaction, SSE framing and the batch engine never look at which
dialect is in use. Adding a dialect is one module here plus one line in ``DIALECTS``.
The contract each module implements is :class:`~.protocol.Dialect` (with its
:class:`~.protocol.StreamFolder`), in ``protocol.py``.

Modules are imported on first use only: ``openai_chat`` by the clients, the native
ones when a profile or ``--api`` names them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence

from ..errors import ConfigError

if TYPE_CHECKING:
    from .protocol import Dialect, StreamFolder

__all__ = ["DIALECTS", "HTTPRequest", "Spec", "get_dialect", "names", "spec",
           "Dialect", "StreamFolder"]

DEFAULT_API = "openai-chat"


class Spec(NamedTuple):
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


class HTTPRequest:
    """What a dialect asks the transport to send: the path is relative to base_url;
    ``headers`` and ``query`` come on top of the profile's (which win). A plain class,
    not a dataclass: this module is on every command's start-up path."""

    __slots__ = ("method", "path", "body", "headers", "query")

    def __init__(self, method: str, path: str, body: Optional[dict[str, Any]] = None,
                 headers: Optional[dict[str, str]] = None,
                 query: Optional[dict[str, str]] = None) -> None:
        self.method, self.path, self.body = method, path, body
        self.headers: dict[str, str] = headers or {}
        self.query: dict[str, str] = query or {}

    def __repr__(self) -> str:
        return (f"HTTPRequest({self.method!r}, {self.path!r}, body={self.body!r}, "
                f"headers={self.headers!r}, query={self.query!r})")


_loaded: dict[str, "Dialect"] = {}


def __getattr__(name: str) -> Any:
    """``Dialect`` and ``StreamFolder`` on first use: the Protocol classes stay off the
    start-up path (see protocol.py)."""
    if name in ("Dialect", "StreamFolder"):
        from . import protocol

        return getattr(protocol, name)
    raise AttributeError(name)


def names() -> Sequence[str]:
    """The dialect names ``api:`` and ``--api`` accept."""
    return tuple(DIALECTS)


def spec(name: str) -> Spec:
    """The table entry for ``name``; :class:`ConfigError` for an unknown one."""
    found = DIALECTS.get(name)
    if found is None:
        raise ConfigError(f"unknown api {name!r} (one of: {', '.join(DIALECTS)})", key="api")
    return found


def get_dialect(name: str = DEFAULT_API) -> "Dialect":
    """The dialect called ``name``, its module imported on first use."""
    dialect = _loaded.get(name)
    if dialect is None:
        module = importlib.import_module(f".{spec(name).module}", __name__)
        dialect = _loaded[name] = module.DIALECT
    return dialect
