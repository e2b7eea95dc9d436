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

A write that fails (a full disk, an I/O error) raises :class:`FileWriteError` after
cutting the file back to its last whole record, so a resume finds only whole lines;
the writer then refuses every further record (the run stops, see engine.py).

The writer also counts the requests that were sent (paid for) and whose records are
not written yet, and reports the number to ``journal`` (the output's lock file,
llmcli/core/filelock.py) whenever it changes: after ``kill -9`` it says how many
results were lost, and will be paid for again on ``--resume``.
"""

from __future__ import annotations

import asyncio
import os
import stat
from typing import IO, Any, BinaryIO, Callable, Optional, cast

from ..core.errors import FileWriteError


class FdSink:
    """Whole writes straight to a file descriptor, no Python buffer in between."""

    def __init__(self, fd: int, *, owned: bool = False, name: str = "stdout") -> None:
        self.fd, self._owned, self.name = fd, owned, name
        # Where the last whole write ended, for a regular file (it can be cut back).
        self.whole: Optional[int] = None
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                self.whole = os.lseek(fd, 0, os.SEEK_END)
        except OSError:
            pass

    @classmethod
    def open(cls, path: str, *, append: bool) -> "FdSink":
        """Open ``path`` for records: appended to, or created afresh."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise _write_error(path, exc) from exc
        return cls(fd, owned=True, name=path)

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (a short write is continued, never left torn). On a
        failure, cut the file back to its last whole write and raise
        :class:`FileWriteError`."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._cut_back()
            raise _write_error(self.name, exc) from exc
        if self.whole is not None:
            self.whole += len(data)

    def _cut_back(self) -> None:
        if self.whole is not None:
            try:
                os.ftruncate(self.fd, self.whole)
            except OSError:
                pass    # nothing more to do: resume drops a torn last line

    def close(self) -> None:
        """Flush to disk and close, if we opened it."""
        if self._owned:
            try:
                os.fsync(self.fd)
            except OSError:
                pass     # not a regular file (a FIFO, /dev/null): nothing to sync
            os.close(self.fd)


def _write_error(path: str, exc: OSError) -> FileWriteError:
    reason = exc.strerror or str(exc)
    return FileWriteError(f"cannot write records to {path}: {reason}", path=path,
                          errno=exc.errno)


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
        return StreamSink(cast(BinaryIO, getattr(stdout, "buffer", stdout)))


class RecordWriter:
    """Puts records out in input order (or as they come), with a bounded buffer."""

    def __init__(self, sink: "FdSink | StreamSink", *, ordered: bool = True,
                 window: int = 512) -> None:
        self.sink, self.ordered, self.window = sink, ordered, window
        self.next = 0               # the oldest seq not yet written (ordered mode)
        self.written = 0
        self._pending: dict[int, bytes] = {}
        self._room: Optional[asyncio.Future[None]] = None
        self.in_flight = 0          # sent (paid) requests whose records are not written
        self._paid: set[int] = set()    # buffered records of sent requests
        self.journal: Optional[Callable[[int], None]] = None
        self.failed: Optional[FileWriteError] = None

    def sent(self) -> None:
        """An item's first request is going out: from now on it is paid for."""
        self.in_flight += 1
        if self.journal:
            self.journal(self.in_flight)

    def put(self, seq: int, data: bytes, paid: bool = False) -> None:
        """Hand over the record of item ``seq`` (``paid``: a request was sent for it)."""
        if self.failed is not None:
            raise self.failed
        if not self.ordered:
            self._write(data, int(paid))
            self.written += 1
            return
        if seq != self.next:
            self._pending[seq] = data
            if paid:
                self._paid.add(seq)
            return
        chunks, n = [data], seq + 1
        pending = self._pending
        while n in pending:
            chunks.append(pending.pop(n))
            n += 1
        settled = int(paid) + (self._settle(seq + 1, n) if self._paid else 0)
        self._write(chunks[0] if len(chunks) == 1 else b"".join(chunks), settled)
        self.written += len(chunks)
        self.next = n
        if self._room is not None:
            self._room.set_result(None)
            self._room = None

    def _settle(self, start: int, end: int) -> int:
        """How many of the buffered records ``start..end-1`` were paid for."""
        paid = self._paid
        found = [k for k in range(start, end) if k in paid]
        paid.difference_update(found)
        return len(found)

    def _write(self, data: bytes, paid: int) -> None:
        try:
            self.sink.write(data)
        except FileWriteError as exc:
            self.failed = exc
            raise
        if paid:
            self.in_flight -= paid
            if self.journal:
                self.journal(self.in_flight)

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
        if self._pending and self.failed is None:
            keys = sorted(self._pending)
            chunks = [self._pending[k] for k in keys]
            self._pending.clear()
            paid = sum(1 for k in keys if k in self._paid)
            self._paid.clear()
            self._write(b"".join(chunks), paid)
            self.written += len(chunks)

    @property
    def buffered(self) -> int:
        """Records waiting for an earlier one."""
        return len(self._pending)
