"""The retry policy: small pure functions, shared by the sync and async send loops.

A send loop asks :func:`next_delay` after each failed attempt; ``None`` means give up
and raise. The loops sleep through an injected ``sleep`` so tests never wait.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from .errors import APIError, APITimeoutError

INITIAL_RETRY_DELAY = 0.5   # seconds before the first retry
MAX_RETRY_DELAY = 8.0       # cap on one computed backoff wait
MAX_RETRY_AFTER = 60.0      # a longer Retry-After is not honoured: we give up instead
JITTER = 0.25               # a wait is shortened by up to this fraction, at random

log = logging.getLogger("llmcli")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry."""

    max_retries: int = 3
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER


def parse_retry_after(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """Seconds the server asks us to wait: `retry-after-ms`, then `retry-after` in any
    form :func:`parse_wait` reads. ``None`` when absent or unreadable."""
    seconds = _seconds(headers.get("retry-after-ms") or "", 1000.0)
    if seconds is not None:
        return seconds
    return parse_wait(headers.get("retry-after"), now)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
EPOCH_SECONDS = 1e9     # a bare number this large is a point in time, not a wait
EPOCH_MILLISECONDS = 1e12


def parse_wait(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait, from any form a server writes a wait or a reset time in:
    seconds (``"1.5"``), a Go-style duration (``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``),
    an absolute Unix time in seconds or milliseconds (``"1733101200"``), an HTTP-date
    or an ISO 8601 time. A time in the past is 0; ``None`` when unreadable, negative
    or infinite. Callers cap the result (``honours_retry_after``)."""
    text = (value or "").strip()
    if not text:
        return None
    now = time.time() if now is None else now
    seconds = _seconds(text)
    if seconds is not None:
        if seconds >= EPOCH_MILLISECONDS:
            return max(seconds / 1000.0 - now, 0.0)
        return max(seconds - now, 0.0) if seconds >= EPOCH_SECONDS else seconds
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    when = _timestamp(text)
    return None if when is None else max(when - now, 0.0)


def _seconds(value: str, scale: float = 1.0) -> Optional[float]:
    """A number of seconds, or ``None`` for text, a negative number, NaN or infinity:
    a hint that cannot be honoured as written is no hint (backoff applies)."""
    try:
        seconds = float(value) / scale
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _timestamp(text: str) -> Optional[float]:
    """An HTTP-date or ISO 8601 time as a Unix time."""
    import datetime

    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    except ValueError:
        pass
    import email.utils   # here, not at the top: it costs every start-up ~10 ms

    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff_delay(retry_index: int, policy: RetryPolicy,
                  rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff for the ``retry_index``-th retry (0-based), capped, with
    jitter that shortens each wait by up to 25 % so that clients spread out."""
    delay = min(policy.initial_delay * (2.0 ** retry_index), policy.max_delay)
    return delay * (1.0 - JITTER * rand())


def honours_retry_after(retry_after: float, policy: RetryPolicy) -> bool:
    """Whether a ``Retry-After`` this long is waited out. A longer one is not: a request
    gives up at once, and batch's scheduler pauses as if no hint had come."""
    return retry_after <= policy.max_retry_after


def next_delay(error: APIError, retry_index: int, policy: RetryPolicy,
               retry_after: Optional[float] = None, remaining: Optional[float] = None,
               rand: Callable[[], float] = random.random) -> Optional[float]:
    """Seconds to wait before retrying after ``error``, or ``None`` to give up.

    ``remaining`` is what is left of the total time budget: a retry that could not
    start before it runs out is not attempted.
    """
    if not error.retryable or retry_index >= policy.max_retries:
        return None
    if retry_after is not None and honours_retry_after(retry_after, policy):
        delay = retry_after
    elif retry_after is not None:
        return None
    else:
        delay = backoff_delay(retry_index, policy, rand)
    if remaining is not None and delay >= remaining:
        return None
    return delay


class Deadline:
    """The total time budget of one command across all attempts (curl's --max-time)."""

    def __init__(self, seconds: Optional[float], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = None if not seconds else clock() + seconds
        self.seconds = seconds

    def remaining(self) -> Optional[float]:
        """Seconds left, or ``None`` when there is no budget."""
        return None if self._end is None else self._end - self._clock()

    def shown(self) -> str:
        """The budget for a message: ``1s`` for --max-time 1, not the ``0.999994s`` left
        of it once the key was read (config/settings.py takes that time off)."""
        return f"{round(self.seconds or 0, 2):g}s"

    def check(self) -> None:
        """Raise :class:`APITimeoutError` when the budget is spent."""
        left = self.remaining()
        if left is not None and left <= 0:
            raise APITimeoutError(f"gave up after the total time budget of {self.shown()}")

    def cap(self, timeout: Optional[float]) -> Optional[float]:
        """A per-operation timeout, shortened so it cannot outlive the budget."""
        left = self.remaining()
        if left is None:
            return timeout
        self.check()
        return left if timeout is None else min(timeout, left)


class Attempts:
    """The attempts of one request, and what to do after each failure; the loop is the
    caller's, written out so that every path shows (openai-python's request loop)::

        attempts = Attempts(policy, deadline)
        while True:
            try:
                return send(), attempts.number
            except APIError as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise
            sleep(delay)

    Only the sleeping differs between the sync client, the async client and batch.
    Any other exception is not a failed attempt: it simply propagates.
    """

    def __init__(self, policy: RetryPolicy, deadline: Optional[Deadline] = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.policy, self.deadline, self._rand = policy, deadline or Deadline(None), rand
        self.number = 1      # the attempt being made

    def retry_delay(self, exc: APIError) -> Optional[float]:
        """Attempt :attr:`number` failed with ``exc``: the seconds to wait before the
        next one (and count it), or ``None`` to give up (each decision is logged).
        ``exc.attempts`` is set either way."""
        exc.attempts = self.number
        delay = next_delay(exc, self.number - 1, self.policy,
                           exc.retry_after, self.deadline.remaining(), self._rand)
        if delay is None:
            self._log_give_up(exc)
            return None
        log.info("retry %d/%d in %.2fs after: %s", self.number, self.policy.max_retries,
                 delay, exc.message)
        self.number += 1
        return delay

    def _log_give_up(self, exc: APIError) -> None:
        asked = exc.retry_after
        if exc.retryable and asked is not None and not honours_retry_after(asked, self.policy):
            log.info("not retrying: the server asks to wait %.0fs, more than the %.0fs "
                     "llmcli waits at most", asked, self.policy.max_retry_after)
        elif exc.retryable and self.number > 1:
            log.info("giving up after %d attempts: %s", self.number, exc.message)
