"""Pacing: how many requests may be in flight, and when the next one may start.

:class:`Throttle` is what the scheduler asks before each attempt. It combines

- the concurrency limit, which a 429 halves (once per slow-down: the 429s of requests
  sent before it do not halve it again) and each success raises by ``1/limit``, so the
  limit climbs back to ``--concurrency`` about one step per round of requests (TCP's
  additive increase, multiplicative decrease);
- a pause for the whole scheduler after a 429 (its ``Retry-After`` if the retry policy
  honours one that long, else the first backoff step) or when
  ``x-ratelimit-remaining-*`` says the in-flight requests use up the budget (until
  ``x-ratelimit-reset-*``);
- ``--rpm`` and ``--tpm`` budgets (:class:`RateLimiter`).

The clock and the sleep are injected, so tests never wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Mapping, Optional

from ..core.retry import RetryPolicy, honours_retry_after, parse_wait

BURST_SECONDS = 1.0     # a budget may be spent this far ahead of its even pace
DEFAULT_COMPLETION_ESTIMATE = 256   # tokens, until replies tell us better
log = logging.getLogger("llmcli")


def parse_duration(text: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds in an ``x-ratelimit-reset-*`` value, in any form: ``"1s"``, ``"6m0s"``,
    ``"20ms"``, a bare number of seconds, an absolute Unix time, an HTTP or ISO date
    (:func:`~llmcli.core.retry.parse_wait`). ``None`` when unreadable."""
    return parse_wait(text, now)


class RateLimiter:
    """A per-minute budget paced evenly (GCRA, the scheduling form of a token bucket):
    up to ``BURST_SECONDS`` of budget may go at once, then it flows at its even pace.
    A request reserves its cost and waits its turn; a cost larger than the burst is
    allowed and paid for by the requests after it. :meth:`adjust` corrects an estimate."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0        # units per second
        burst = max(self.rate * BURST_SECONDS, 1.0)
        self._tolerance = (burst - 1.0) / self.rate
        self._clock = clock
        self._tat = clock()                  # when the budget spent so far is paid off

    def reserve(self, cost: float) -> float:
        """Take ``cost`` from the budget; return the seconds to wait before sending."""
        now = self._clock()
        tat = max(self._tat, now)
        start = max(now, tat - self._tolerance)
        self._tat = tat + cost / self.rate
        return start - now

    def adjust(self, delta: float) -> None:
        """Charge (``delta`` > 0) or refund (< 0) what an estimate was off by."""
        self._tat += delta / self.rate


class Throttle:
    """Admission for each attempt: concurrency limit, pauses, rate budgets."""

    def __init__(self, concurrency: int, rpm: Optional[float] = None,
                 tpm: Optional[float] = None, *, policy: RetryPolicy = RetryPolicy(),
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.max = concurrency
        self.policy = policy
        self.limit = float(concurrency)
        self.active = 0
        self.epoch = 0              # bumped by each slow-down
        self.pause_until = 0.0
        self.slowdowns = 0
        self._clock, self._sleep = clock, sleep
        self._rpm = RateLimiter(rpm, clock) if rpm else None
        self._tpm = RateLimiter(tpm, clock) if tpm else None
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.completion_estimate = float(DEFAULT_COMPLETION_ESTIMATE)

    @property
    def counts_tokens(self) -> bool:
        """Whether callers need to estimate token costs."""
        return self._tpm is not None

    async def acquire(self, cost: float = 0.0) -> int:
        """Wait until one more request may start; return the epoch it starts in."""
        while True:
            pause = self.pause_until - self._clock()
            if pause > 0:
                await self._sleep(pause)
            elif self.active >= int(self.limit):
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter
            else:
                break
        self.active += 1
        wait = self._reserve(cost)
        if wait > 0:
            try:
                await self._sleep(wait)
                pause = self.pause_until - self._clock()
                if pause > 0:      # a 429 came in while this request waited its turn
                    await self._sleep(pause)
            except BaseException:  # cancelled while waiting: the slot was never used
                self.release()
                raise
        return self.epoch

    def _reserve(self, cost: float) -> float:
        wait = self._rpm.reserve(1) if self._rpm else 0.0
        if self._tpm:
            wait = max(wait, self._tpm.reserve(cost))
        return wait

    def release(self) -> None:
        """One request finished (however it ended)."""
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        free = int(self.limit) - self.active
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def succeeded(self, estimate: float = 0.0, usage: Optional[Mapping[str, Any]] = None) -> None:
        """A reply came: creep the limit back up; correct the token estimate by usage."""
        if self.limit < self.max:
            self.limit = min(float(self.max), self.limit + 1.0 / self.limit)
            self._wake()
        if self._tpm and usage:
            total = usage.get("total_tokens")
            if isinstance(total, (int, float)):
                self._tpm.adjust(total - estimate)
                completion = usage.get("completion_tokens")
                if isinstance(completion, (int, float)):
                    self.completion_estimate += (completion - self.completion_estimate) * 0.1

    def rate_limited(self, epoch: int, retry_after: Optional[float]) -> None:
        """A 429: pause everyone, and halve the limit unless this request was sent
        before the last slow-down (its 429 is old news). A ``Retry-After`` too long for
        the retry policy is not waited out here either: the item that got it gave up,
        and one such answer must not stall every other item."""
        if epoch == self.epoch:
            self.limit = max(1.0, self.limit / 2.0)
            self.epoch += 1
            self.slowdowns += 1
        if retry_after is None or not honours_retry_after(retry_after, self.policy):
            retry_after = self.policy.initial_delay
        self.pause_until = max(self.pause_until, self._clock() + retry_after)

    def observe(self, response: Any) -> None:
        """See every HTTP answer (the client's ``on_response``) for its headers."""
        self.headers(response.headers)

    def headers(self, headers: Mapping[str, str]) -> None:
        """Follow the rate-limit headers (OpenAI's ``x-ratelimit-remaining-*``,
        Anthropic's ``anthropic-ratelimit-*-remaining``): when what remains is no more
        than the requests (or their tokens) already in flight, pause until the window
        resets."""
        for remaining_name, reset_name, unit in _RATE_HEADERS:
            remaining = headers.get(remaining_name)
            if remaining is None:
                continue
            in_flight = self.active if unit == "requests" else \
                self.active * self.completion_estimate
            if _int(remaining) < in_flight:
                self._pause_for(headers.get(reset_name))

    def _pause_for(self, reset: Optional[str]) -> None:
        """Pause until the window resets, but no longer than a ``Retry-After`` would be
        honoured: a reset hours away must not stall the run (the requests sent after
        it get their 429 and fail, or wait, as the retry policy says)."""
        seconds = parse_duration(reset)
        if seconds and not honours_retry_after(seconds, self.policy):
            log.info("the rate limit resets in %.0fs, more than the %.0fs llmcli waits at "
                     "most: pausing that long only", seconds, self.policy.max_retry_after)
            seconds = self.policy.max_retry_after
        if seconds:
            self.pause_until = max(self.pause_until, self._clock() + seconds)


# (remaining header, its reset header, what it counts). The reset is a duration
# (OpenAI: "6m0s") or a time (Anthropic: RFC 3339); parse_duration reads both.
_RATE_HEADERS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", "requests"),
    ("anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset",
     "tokens"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", "tokens"),
)


def _int(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")   # unreadable: do not pause on it
