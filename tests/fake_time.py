"""An asyncio event loop on fake time, for unit tests of code that waits.

When no callback is ready, a real loop blocks in ``select()`` until the next timer is
due; :class:`VirtualTimeLoop` instead moves its clock forward to that timer at once.
``asyncio.sleep``, ``call_later`` and ``wait_for`` timeouts all read ``loop.time()``,
so a scenario of minutes (backoff, pacing, a grace period) runs in microseconds, in the
same order as it would in real time. Give the code under test ``clock=loop.time``.

Only for code that waits on timers and futures: with real sockets in the loop, time
would jump past their answers.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any, Awaitable, Optional, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, instead of waiting ``timeout`` seconds, adds them to the loop's
    clock. The loop's own wake-up pipe is still polled, so threads can wake it."""

    def __init__(self, loop: "VirtualTimeLoop") -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: Optional[float] = None) -> list[tuple[Any, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:        # no timer at all: only another thread can wake us
            return super().select(None)
        self._loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """An event loop whose ``time()`` moves only when everything waits on a timer."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Awaitable[T], loop: Optional[VirtualTimeLoop] = None) -> T:
    """``asyncio.run`` on a :class:`VirtualTimeLoop` (a given one, to read its clock)."""
    loop = loop or VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
