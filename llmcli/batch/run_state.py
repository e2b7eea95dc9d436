"""What a batch run is told, what it counts and how it ended (:class:`EngineOptions`,
:class:`Stats`, :class:`Outcome`), and the per-item rules the scheduler in
:mod:`llmcli.batch.engine` applies: an item's ``--max-time`` clock, its ``--tpm``
estimate, its schema, and which errors stop the whole run.

Apart from the scheduler so that progress, the summary and the job set-up read these
without the engine (and asyncio) behind them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional, Protocol

from ..core.errors import APIError, AuthenticationError, LLMCLIError, UnreachableError
from ..core.retry import RetryPolicy
from .reader import Item

DEFAULT_GRACE = 5.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class EngineOptions:
    """How the scheduler runs."""

    concurrency: int = 16
    rpm: Optional[float] = None
    tpm: Optional[float] = None
    fail_fast: bool = False
    grace: float = DEFAULT_GRACE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_time: Optional[float] = None      # per item, across its attempts, throttle waits aside
    progress_interval: Optional[float] = None
    schema_retries: int = 0               # re-asks of a reply that does not match its schema


class Stats:
    """Counters for progress and the summary; plain attributes, cheap to bump."""

    def __init__(self, total: int = 0, skipped: int = 0, clock: Clock = time.monotonic) -> None:
        self.total, self.skipped, self.clock = total, skipped, clock
        self.done = self.ok = self.failed = self.invalid = 0
        self.retries = self.rate_limited = self.slowdowns = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost = 0.0                   # USD of the requests with a known price
        self.unpriced = 0                 # replies of models with no known price
        self.errors: dict[str, int] = {}
        self.lost_in_flight = 0     # paid requests an earlier, killed run never recorded
        self.started = clock()
        self.finished: Optional[float] = None

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it finished)."""
        return (self.finished or self.clock()) - self.started

    @property
    def rate(self) -> float:
        """Items finished per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass
class Outcome:
    """How a run ended."""

    stats: Stats
    # "interrupted", "fail-fast", "max-cost", "write-error", "auth-error" or
    # "connection-error"
    stopped: Optional[str] = None
    reason: Optional[str] = None          # why a "max-cost" run stopped
    error: Optional[LLMCLIError] = None   # the error that stopped the run, if one did:
                                          # --fail-fast's, a FileWriteError, a 401, ...

    @property
    def not_run(self) -> int:
        """Items with no record (the run stopped before they finished)."""
        return self.stats.total - self.stats.done


def run_stopping(exc: APIError) -> Optional[str]:
    """Why ``exc`` stops the whole run, or ``None``. A 401 (no key, a wrong key) and a
    connection that retrying cannot fix (nothing listening on a local port, a TLS
    mismatch or a failed certificate check) will fail every item the same way: the run
    stops at the first, sends nothing more, and can be resumed once it is fixed."""
    if isinstance(exc, AuthenticationError):
        return "auth-error"
    if isinstance(exc, UnreachableError):
        return "connection-error"
    return None


class ItemClock:
    """The clock of one item's ``--max-time``: it stands still while the item waits for
    the throttle (a rate slot, a 429 pause, room under the concurrency limit), so the
    budget is spent only on sending and on backing off between attempts."""

    __slots__ = ("_clock", "_held", "_since")

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._held = 0.0                  # seconds spent waiting so far
        self._since: Optional[float] = None

    def __call__(self) -> float:
        now = self._since if self._since is not None else self._clock()
        return now - self._held

    def hold(self) -> None:
        """Stop the clock (the item starts waiting)."""
        self._since = self._clock()

    def go(self) -> None:
        """Start it again."""
        if self._since is not None:
            self._held += self._clock() - self._since
            self._since = None


def estimate_tokens(body: dict[str, Any], completion: float) -> float:
    """What a request may cost against ``--tpm`` (as OpenAI counts it: the prompt, about
    4 characters a token, plus ``max_tokens`` or the completion size seen so far)."""
    chars = 0
    messages = body.get("messages") or ()
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    return chars / 4 + 4 * len(messages) + (limit if isinstance(limit, int) else completion)


class Accounting(Protocol):
    """Cost, budget and usage log of a run (:mod:`llmcli.batch.accounting`)."""

    def admit(self, body: dict[str, Any]) -> Optional[float]: ...
    def refusal(self) -> Optional[str]: ...
    def settle(self, item: Item, body: dict[str, Any], reserved: Optional[float], result: Any,
               exc: Optional[APIError], attempts: int, latency_ms: int) -> Optional[float]: ...


def schema_of(body: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The JSON Schema a request asks for (canonical ``response_format``), if any."""
    fmt = body.get("response_format")
    spec = fmt.get("json_schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else None
