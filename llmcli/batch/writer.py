"""Writing records: each whole line in one unbuffered write, in input order if asked.

A record is handed to the kernel the moment it (and every record before it, in order)
is ready, in a single ``write`` of whole lines: a crash never leaves half a line from
Python's side, and a record once written is never lost. (A power cut can still tear the
last line; resume repairs that.)

In input order, finished records wait in a reorder buffer until the records before
them are done. The buffer is bounded: an item may start only while it is fewer than
``window`` places after the oldest unfinished one, so memory stays flat however long
the input is, and one slow item holds back at most ``window`` others (``--unordered``
does not wait at all).
"""

from __future__ import annotations

import asyncio
import os
from typing import IO, Any, BinaryIO, Optional


class FdSink:
    """Whole writes straight to a file descriptor, no Python buffer in between."""

    def __init__(self, fd: int, *, owned: bool = False) -> None:
        self.fd, self._owned = fd, owned

    @classmethod
    def open(cls, path: str, *, append: bool) -> "FdSink":
        """Open ``path`` for records: appended to, or created afresh."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        return cls(os.open(path, flags, 0o644), owned=True)

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (a short write is continued, never left torn)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        """Flush to disk and close, if we opened it."""
        if self._owned:
            try:
                os.fsync(self.fd)
            except OSError:
                pass     # not a regular file (a FIFO, /dev/null): nothing to sync
            os.close(self.fd)


class StreamSink:
    """Whole writes to a binary stream that has no file descriptor (an in-process
    run's captured stdout), flushed at once as :class:`FdSink`'s writes are."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        """Write and flush all of ``data``."""
        self.stream.write(data)
        self.stream.flush()

    def close(self) -> None:
        """Nothing to close: the stream belongs to the caller."""


def stdout_sink(stdout: Optional[IO[Any]]) -> "FdSink | StreamSink":
    """Where records go without ``-o``: straight to stdout's file descriptor, or to
    its byte stream when it has none."""
    if stdout is None:
        return FdSink(1)
    try:
        return FdSink(stdout.fileno())
    except (OSError, ValueError, AttributeError):   # io.UnsupportedOperation is both
        return StreamSink(getattr(stdout, "buffer", stdout))


class RecordWriter:
    """Puts records out in input order (or as they come), with a bounded buffer."""

    def __init__(self, sink: "FdSink | StreamSink", *, ordered: bool = True,
                 window: int = 512) -> None:
        self.sink, self.ordered, self.window = sink, ordered, window
        self.next = 0               # the oldest seq not yet written (ordered mode)
        self.written = 0
        self._pending: dict[int, bytes] = {}
        self._room: Optional[asyncio.Future[None]] = None

    def put(self, seq: int, data: bytes) -> None:
        """Hand over the record of item ``seq``."""
        if not self.ordered:
            self.sink.write(data)
            self.written += 1
            return
        if seq != self.next:
            self._pending[seq] = data
            return
        chunks, n = [data], seq + 1
        pending = self._pending
        while n in pending:
            chunks.append(pending.pop(n))
            n += 1
        self.sink.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        self.written += len(chunks)
        self.next = n
        if self._room is not None:
            self._room.set_result(None)
            self._room = None

    def has_room(self, seq: int) -> bool:
        """Whether item ``seq`` may start without outgrowing the reorder buffer."""
        return not self.ordered or seq < self.next + self.window

    async def wait_room(self, seq: int) -> None:
        """Wait until item ``seq`` may start."""
        while not self.has_room(seq):
            if self._room is None:
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)

    def drain(self) -> None:
        """Write every buffered record, gaps or not (the run is stopping: an item that
        never finished leaves a gap that resume fills)."""
        if self._pending:
            chunks = [self._pending[k] for k in sorted(self._pending)]
            self._pending.clear()
            self.sink.write(b"".join(chunks))
            self.written += len(chunks)

    @property
    def buffered(self) -> int:
        """Records waiting for an earlier one."""
        return len(self._pending)
