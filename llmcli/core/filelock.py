"""One writer per file: an advisory lock on ``FILE.lock``, beside the file it guards.

``fcntl.flock`` on a lock file of its own, not on FILE: resume and conversations
replace FILE by renaming a new file over it, and a lock on the old inode would guard
nothing. The kernel drops a flock when its process dies, however it dies, so a lock
left by a killed run never blocks: the file may stay behind, but nobody holds it.

The lock file also carries a small journal, rewritten in place (one ``pwrite``): the
holder's pid, and for a batch the number of requests sent whose records are not yet
in FILE. After ``kill -9`` that number is what the next run reads: the requests that
were paid for and will be sent again.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import Callable, Iterator, Optional

from .errors import BusyError, FileWriteError

POLL = 0.05           # seconds between tries while waiting for a lock
_JOURNAL = re.compile(rb"pid +(\d+) +in-flight +(\d+)")


class FileLock:
    """The lock of one file. ``acquire`` it, ``note`` progress, ``release`` it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.path = os.path.realpath(target) + ".lock"
        self.previous_in_flight = 0     # what a killed holder left in the journal
        self._fd: Optional[int] = None

    def acquire(self, wait: float = 0.0, *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> "FileLock":
        """Take the lock, waiting up to ``wait`` seconds; raise :class:`BusyError`."""
        import fcntl

        end = clock() + wait
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise FileWriteError(f"cannot create the lock file {self.path}: "
                                     f"{exc.strerror or exc}", path=self.path,
                                     errno=exc.errno) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_journal(fd)[0]
                os.close(fd)
                if clock() >= end:
                    raise self._busy(holder) from None
                sleep(POLL)
                continue
            if self._still_named(fd):
                break
            os.close(fd)     # a holder removed it as we opened it: take the new one
        self._fd = fd
        self.previous_in_flight = _read_journal(fd)[1]
        self.note(0)
        return self

    def _still_named(self, fd: int) -> bool:
        """Whether the lock file we hold is still the one at ``path``."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _busy(self, holder: Optional[int]) -> BusyError:
        who = f"llmcli (pid {holder})" if holder else "another llmcli"
        return BusyError(f"{self.target} is being written by {who}; only one run may "
                         "write it at a time: wait for it to finish", path=self.target,
                         holder=holder)

    def note(self, in_flight: int) -> None:
        """Record how many paid requests have no record in the file yet."""
        if self._fd is not None:
            os.pwrite(self._fd, b"pid %10d in-flight %10d\n" % (os.getpid(), in_flight), 0)

    def release(self, in_flight: int = 0) -> None:
        """Let go. The lock file is removed (while still held, so no one else can be
        using it) unless paid requests are still without a record: then it stays,
        unlocked, with their count for the next run to report."""
        if self._fd is None:
            return
        try:
            if in_flight:
                self.note(in_flight)
            else:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def holding(path: Optional[str], *, active: bool = True, wait: float = 0.0) -> Iterator[None]:
    """Hold ``path``'s lock for the ``with`` block (nothing when not ``active``, for no
    path, or for a path that is not a regular file)."""
    if not (active and path and lockable(path)):
        yield
        return
    lock = FileLock(path).acquire(wait)
    try:
        yield
    finally:
        lock.release()


def _read_journal(fd: int) -> tuple[Optional[int], int]:
    """(holder pid, requests in flight) from a lock file's journal."""
    try:
        found = _JOURNAL.match(os.pread(fd, 64, 0))
    except OSError:
        return None, 0
    return (int(found.group(1)), int(found.group(2))) if found else (None, 0)


def lockable(path: str) -> bool:
    """Whether ``path`` is a file to lock: a regular file or one yet to be made (not a
    FIFO, ``/dev/stdout`` or ``/dev/null``, whose lock file could not sit beside it)."""
    import stat

    if os.name != "posix":     # flock is POSIX's; elsewhere files are not locked
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False
