"""What the application decides and the connection carries out.

``app.App.handle`` turns a ``Request`` into a plan: a complete ``Reply`` (the
fast, synchronous case), a ``Stream`` of server-sent events, or one of the
misbehaviours (``Delayed``, ``Hang``, ``Drop``, ``Truncated``).  Keeping the
plans as plain data lets the protocol stay ignorant of OpenAI and lets the
application stay ignorant of sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream; charset=utf-8"


class Request:
    """One parsed HTTP request. ``headers`` has lower-cased names."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str],
                 body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class Reply:
    """A complete response; ``headers`` are extra, pre-encoded header lines."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status: int, body: bytes, content_type: bytes = JSON,
                 headers: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


@dataclass
class Stream:
    """A 200 event stream sent with chunked encoding.

    ``events`` are complete SSE events (``data: ...\\n\\n``): a list when
    short, an iterator for a long stream rendered while it is sent.  With
    ``abort`` the connection is closed after the last event instead of ending
    the body.
    """

    events: list[bytes] | Iterator[bytes]
    interval: float = 0.0
    keepalive: bool = False
    abort: bool = False
    headers: bytes = b""


@dataclass
class Delayed:
    """Wait ``delay`` seconds, then carry out ``plan``."""

    delay: float
    plan: "Plan"


@dataclass
class Truncated:
    """Send the head of ``reply`` and half its body, then close the connection."""

    reply: Reply


class Hang:
    """Never answer; keep the connection open until the client goes away."""


class Drop:
    """Close the connection without sending anything."""


Plan = Union[Reply, Stream, Delayed, Truncated, Hang, Drop]


def sse_event(data: bytes) -> bytes:
    """Frame one server-sent event carrying ``data`` (which must be one line)."""
    return b"data: " + data + b"\n\n"


SSE_DONE = sse_event(b"[DONE]")
SSE_KEEPALIVE_COMMENT = b": keep-alive\n\n"
