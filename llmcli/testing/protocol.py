"""A small, fast HTTP/1.1 server protocol on ``asyncio.Protocol``.

It parses requests straight out of a per-connection buffer, so pipelined
requests that arrive in one segment, or a request split over many, both work.
Requests are answered strictly in order: while a slow plan (a delay, a stream
with pauses) is running, later requests wait in the buffer.  Bodies must carry
a Content-Length; chunked request bodies are refused with 411.
"""

from __future__ import annotations

import asyncio
import os
from http import HTTPStatus
from itertools import count, islice
from typing import Callable

from .faults import error_body
from .plans import (EVENT_STREAM, Delayed, Drop, Hang, Plan, Reply, Request, Stream,
                    SSE_KEEPALIVE_COMMENT, Truncated)

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
# Streams longer than this are written from a task, so that a huge #chunks
# stream honours flow control instead of piling up in the transport buffer.
SYNC_STREAM_EVENTS = 256
STREAM_BATCH = 128

_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_CLOSE = b"connection: close\r\n"
# A random prefix keeps request ids unique across server restarts in one test run.
_ID_PREFIX = b"req_" + os.urandom(6).hex().encode()
_ids = count(1)

Handler = Callable[[Request], Plan]


def status_line(status: int) -> bytes:
    """The status line for any status, including ones ``HTTPStatus`` lacks."""
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Status %d\r\n" % (status, status)


def _chunk(data: bytes) -> bytes:
    """Frame ``data`` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class HTTPConnection(asyncio.Protocol):
    """One client connection: parse, hand to the application, write the plan out."""

    def __init__(self, handler: Handler, connections: set["HTTPConnection"]) -> None:
        self._handler = handler
        self._connections = connections
        self._buf = bytearray()
        self._pending: tuple[Request, int, int] | None = None  # request, body start, length
        self._task: asyncio.Task[None] | None = None
        self._hung = False
        self._closed = False
        self._drain: asyncio.Future[None] | None = None
        # Set by connection_made, before any data can arrive: never None where it is used.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]

    # -- asyncio callbacks -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport and register for shutdown."""
        self.transport = transport  # type: ignore[assignment]
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop any running plan; a client hanging up is normal, not an error."""
        self._closed = True
        self._connections.discard(self)
        if self._task is not None:
            self._task.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        """Buffer data and answer every complete request unless a plan is running."""
        if self._hung:
            return
        self._buf += data
        if self._task is None:
            self._process()

    def pause_writing(self) -> None:
        """Make streams wait until the client catches up."""
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """Release a waiting stream."""
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    def close(self) -> None:
        """Close the connection at once (server shutdown)."""
        if self.transport is not None and not self._closed:
            self.transport.abort()

    # -- parsing -------------------------------------------------------------
    def _process(self) -> None:
        """Answer buffered requests in order until one needs a task or data runs out."""
        while not self._closed:
            request = self._next_request()
            if request is None:
                return
            plan = self._handler(request)
            if type(plan) is Reply:
                self._send(plan, request.keep_alive)
                continue
            if not self._carry_out_now(plan, request.keep_alive):
                self._task = asyncio.get_running_loop().create_task(
                    self._carry_out(plan, request.keep_alive))
                return

    def _next_request(self) -> Request | None:
        """Take one complete request out of the buffer, or None if incomplete."""
        if self._pending is None:
            head_end = self._buf.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self._buf) > MAX_HEAD:
                    self._fail(431, "Request header fields too large.")
                return None
            self._pending = self._parse_head(head_end)
            if self._pending is None:
                return None
        request, start, length = self._pending
        if len(self._buf) < start + length:
            return None
        self._pending = None
        request.body = bytes(self._buf[start:start + length])
        del self._buf[:start + length]
        return request

    def _parse_head(self, head_end: int) -> tuple[Request, int, int] | None:
        """Parse the request line and headers; on a bad request answer and close."""
        lines = self._buf[:head_end].decode("latin-1").lstrip("\r\n").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            self._fail(400, "Malformed request line.")
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            self._fail(411, "Chunked request bodies are not supported; send Content-Length.")
            return None
        try:
            length = int(headers.get("content-length", 0))
        except ValueError:
            self._fail(400, "Invalid Content-Length header.")
            return None
        if not 0 <= length <= MAX_BODY:
            self._fail(413 if length > 0 else 400, "Request body too large or invalid.")
            return None
        # HTTP/1.0 clients get one response per connection: simpler than
        # negotiating keep-alive, and a stream needs chunked encoding anyway.
        keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        path, _, query = target.partition("?")
        start = head_end + 4
        if length and len(self._buf) < start + length and \
                headers.get("expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return Request(method, path, query, headers, b"", keep_alive), start, length

    def _fail(self, status: int, message: str) -> None:
        """Answer a request we cannot frame, then close: the stream is out of sync."""
        body = error_body(message, "invalid_request_error")
        self._send(Reply(status, body), keep_alive=False)
        self._buf.clear()

    # -- writing -------------------------------------------------------------
    def _head(self, status: int, content_type: bytes, extra: bytes, keep_alive: bool,
              framing: bytes) -> bytes:
        """Build the status line and headers of one response; ``extra`` may bring its
        own x-request-id (the app's echo_key)."""
        request_id = b"x-request-id: %s%08x\r\n" % (_ID_PREFIX, next(_ids)) \
            if not extra or b"x-request-id:" not in extra else b""
        return b"".join((
            status_line(status), b"content-type: ", content_type, b"\r\n", framing,
            request_id, extra,
            b"" if keep_alive else _CLOSE, b"\r\n",
        ))

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        """Write a complete response; close afterwards unless keep-alive."""
        framing = b"content-length: %d\r\n" % len(reply.body)
        head = self._head(reply.status, reply.content_type, reply.headers, keep_alive, framing)
        self.transport.write(head + reply.body)
        if not keep_alive:
            self._closed = True
            self.transport.close()

    def _carry_out_now(self, plan: Plan, keep_alive: bool) -> bool:
        """Carry out plans that need no waiting; False if a task must do it."""
        if isinstance(plan, Stream):
            if plan.interval or type(plan.events) is not list \
                    or len(plan.events) > SYNC_STREAM_EVENTS:
                return False
            self._start_stream(plan, keep_alive)
            self.transport.write(_chunk(b"".join(plan.events)) if plan.events else b"")
            self._end_stream(plan, keep_alive)
        elif isinstance(plan, Hang):
            self._hung = True
            self._buf.clear()
        elif isinstance(plan, Drop):
            self._closed = True
            self.transport.close()
        elif isinstance(plan, Truncated):
            reply = plan.reply
            framing = b"content-length: %d\r\n" % len(reply.body)
            head = self._head(reply.status, reply.content_type, reply.headers, True, framing)
            self.transport.write(head + reply.body[:len(reply.body) // 2])
            self._closed = True
            self.transport.close()
        else:
            return False
        return True

    def _start_stream(self, stream: Stream, keep_alive: bool) -> None:
        """Write the head of an event stream and the optional SSE comment."""
        framing = b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n"
        head = self._head(200, EVENT_STREAM, stream.headers, keep_alive, framing)
        self.transport.write(head + (_chunk(SSE_KEEPALIVE_COMMENT) if stream.keepalive else b""))

    def _end_stream(self, stream: Stream, keep_alive: bool) -> None:
        """Finish the chunked body, or break off the connection for a mid-stream drop."""
        if stream.abort:
            self._closed = True
            self.transport.close()
            return
        self.transport.write(b"0\r\n\r\n")
        if not keep_alive:
            self._closed = True
            self.transport.close()

    async def _carry_out(self, plan: Plan, keep_alive: bool) -> None:
        """Run a plan that waits, then go on with pipelined requests."""
        try:
            if isinstance(plan, Delayed):
                await asyncio.sleep(plan.delay)
                plan = plan.plan
            if type(plan) is Reply:
                self._send(plan, keep_alive)
            elif isinstance(plan, Stream):
                await self._stream(plan, keep_alive)
            else:
                self._carry_out_now(plan, keep_alive)
        except (asyncio.CancelledError, ConnectionError):
            return  # the client went away; nothing is left to answer
        self._task = None
        if not self._closed and not self._hung and self._buf:
            self._process()

    async def _stream(self, stream: Stream, keep_alive: bool) -> None:
        """Write events one by one with a pause between, or in batches without."""
        self._start_stream(stream, keep_alive)
        events = iter(stream.events)
        step = 1 if stream.interval else STREAM_BATCH
        first = True
        while batch := list(islice(events, step)):
            if not first:
                # Without a pause, still yield so other connections are served.
                await asyncio.sleep(stream.interval)
            first = False
            if self._closed:
                return
            self.transport.write(_chunk(b"".join(batch)))
            if self._drain is not None:
                await self._drain
        self._end_stream(stream, keep_alive)
