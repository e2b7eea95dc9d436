"""A Server-Sent Events decoder: bytes in, events out. It knows nothing of HTTP.

Follows the WHATWG event-stream rules that matter for LLM APIs: lines end in LF, CRLF
or CR (a CRLF may be split across two chunks); a blank line dispatches the event;
lines starting with ``:`` are comments (keep-alives); several ``data:`` lines join
with ``\\n``; one space after the colon is dropped. ``[DONE]`` and in-stream ``error``
objects are the caller's business.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, NamedTuple, Optional

from .errors import InvalidResponseError

# One event's size at most. A chat chunk is a few hundred bytes and a whole reply sent
# as one event a few hundred KB; a server that sends megabytes without a line end (or
# an event that never ends) must not make llmcli hold them all.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSETooLarge(InvalidResponseError):
    """An event (or a line) grew past :data:`MAX_EVENT_BYTES`: the stream is not what
    the API promises, and is given up (exit 5; in batch, that item's error record)."""


class SSEEvent(NamedTuple):
    """One dispatched event."""

    data: str
    event: Optional[str] = None
    id: Optional[str] = None


# SSEEvent(...) goes through a Python-level __new__; this is the same tuple, made in C.
_new_event = tuple.__new__


class SSEDecoder:
    """Incremental decoder: call :meth:`feed` with each chunk, :meth:`close` at EOF."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_names", "limit")

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self.limit = limit
        self._buf = b""
        self._data: list[bytes] = []
        self._event: Optional[str] = None
        self._id: Optional[str] = None
        self._names: dict[Any, str] = {}   # `event: NAME` lines seen, decoded once

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode a chunk; return the events it completed (often none or one)."""
        buf = self._buf + chunk if self._buf else chunk
        # A trailing CR may be the first half of a CRLF: keep it for the next chunk.
        end = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
        cut = max(buf.rfind(b"\n", 0, end), buf.rfind(b"\r", 0, end))
        if cut < 0:
            if len(buf) > self.limit:
                raise SSETooLarge(f"a stream line is longer than {self.limit} bytes")
            self._buf = buf
            return []
        self._buf = buf[cut + 1:]
        events = self._blocks(buf[: cut + 1])
        if self._data and sum(map(len, self._data)) > self.limit:   # an event spanning chunks
            raise SSETooLarge(f"a stream event is larger than {self.limit} bytes")
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: decode what is left, and dispatch an event that the server
        did not end with a blank line (lenient, as most clients are)."""
        lines = self._buf.splitlines()
        self._buf = b""
        events = self._lines(lines)
        if self._data:
            events.append(self._dispatch())
        return events

    def _blocks(self, head: bytes) -> list[SSEEvent]:
        """Whole lines, decoded a blank-line-separated block at a time: the blocks LLM
        APIs send (``data: X``, or ``event: NAME`` + ``data: X``) are taken apart with
        two finds; anything else (CR line ends, comments, ids, several data lines, an
        event begun in the last chunk) goes through :meth:`_lines`, line by line."""
        if b"\r" in head:
            return self._lines(head.splitlines())
        events: list[SSEEvent] = []
        if self._data or self._event is not None:   # the last chunk ended mid-event
            if head.startswith(b"\n"):
                end = 1
            else:
                found = head.find(b"\n\n")
                if found < 0:
                    return self._lines(head.splitlines())   # nor does it end in this one
                end = found + 2
            events = self._lines(head[:end].splitlines())   # finish it line by line
            head = head[end:]
        # Decoded once for the whole read: lines never split a UTF-8 character.
        blocks = head.decode("utf-8", "replace").split("\n\n")
        rest = blocks.pop()            # the lines after the last blank line
        names, last_id, add, new, cls = self._names, self._id, events.append, _new_event, SSEEvent
        for block in blocks:
            nl = block.find("\n")
            if nl < 0 and block.startswith("data: "):
                add(new(cls, (block[6:], None, last_id)))
            elif nl > 0 and block.startswith("event: ") and block.startswith("data: ", nl + 1) \
                    and block.find("\n", nl + 1) < 0:
                line = block[:nl]
                name = names.get(line)
                if name is None:
                    name = self._name(line)
                add(new(cls, (block[nl + 7:], name, last_id)))
            else:
                events.extend(self._lines(block.encode().split(b"\n") + [b""]))
                last_id = self._id
        if rest:
            events.extend(self._lines(rest.encode().splitlines()))
        return events

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        # The hot path (LLM streams: one `data: ` line, one blank line per event) runs
        # inline, without a method call per line; _dispatch does the same for close().
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line.startswith(b"data: "):
                data.append(line[6:])
            elif line:
                if line.startswith(b"event: "):   # Anthropic's and Responses' every event
                    name = self._names.get(line)
                    self._event = name if name is not None else self._name(line)
                elif line[0] != 0x3A:             # not a ':' comment
                    self._field(line)
            elif data:
                raw = data[0] if len(data) == 1 else b"\n".join(data)
                events.append(_new_event(SSEEvent, (raw.decode("utf-8", "replace"),
                                                    self._event, self._id)))
                data = self._data = []
                self._event = None
            else:
                self._event = None
        return events

    def _name(self, line: Any) -> str:
        """The NAME of an ``event: NAME`` line (bytes, or text from :meth:`_blocks`); a
        stream has a handful of names, so they are kept (up to a bound: a hostile server
        cannot grow the table without end)."""
        name = line[7:] if isinstance(line, str) else line[7:].decode("utf-8", "replace")
        if len(self._names) < 64:
            self._names[line] = name
        return name

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")

    def _dispatch(self) -> SSEEvent:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = SSEEvent(data.decode("utf-8", "replace"), self._event, self._id)
        self._data = []
        self._event = None
        return event


def iter_events(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Decode an iterable of byte chunks into events."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()
