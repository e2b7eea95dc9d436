"""The scheduler: N workers on one async client, each taking the next item, sending it
through its retries, and handing its record to the writer.

Workers pull from one shared iterator (no task per item, no queue): the per-item cost
is one dict, one JSON dump and one write. Each attempt passes the :class:`Throttle`
(concurrency limit, pauses, rpm/tpm), so retries respect a slow-down like new items do.
Retries follow the core's policy through its own :class:`~llmcli.core.retry.Attempts`
loop; the client itself does not retry (``max_retries=0``) so that every attempt is
admitted and counted here. An item's ``--max-time`` counts only while it is not waiting
for the throttle (:class:`ItemClock`): waiting for a rate slot is not the item's fault.

Stopping (a signal, ``--fail-fast``): no item starts after it; items waiting (for room,
for the throttle, for a retry) are dropped at once; requests in flight get ``grace``
seconds to finish and be written; then everything is cancelled. A dropped item has no
record, so ``--resume`` runs it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterator, Optional

from ..core.errors import APIError, FileWriteError, RateLimitError, SchemaValidationError, error_kind
from ..core.retry import Attempts, Deadline
from .limiter import Throttle
from .reader import Item
from .run_state import (DEFAULT_GRACE, Accounting, Clock, EngineOptions, ItemClock, Outcome,
                        Sleep, Stats, estimate_tokens, run_stopping, schema_of)
from .writer import RecordWriter

# Importers (job, cli, tests) name these from here: the engine is where a run starts.
__all__ = ["DEFAULT_GRACE", "Accounting", "Engine", "EngineOptions", "ItemClock", "Outcome",
           "Stats", "estimate_tokens", "run_stopping", "run_with_signals", "schema_of"]


class _Dropped(Exception):
    """The run is stopping: leave this item for resume."""


class _SendFailed(Exception):
    """A request failed after its retries: the error and how many attempts it took."""

    def __init__(self, error: APIError, attempts: int) -> None:
        super().__init__(error.message)
        self.error, self.attempts = error, attempts


class Engine:
    """One run over ``items``. Call :meth:`run` in a loop; :meth:`interrupt` from a
    signal handler. Every wait (backoff, pacing, progress ticks, the grace after a stop)
    goes through ``sleep`` and every time read through ``clock``, so a test runs a
    run of minutes on fake time."""

    def __init__(self, items: Iterator[Item], client: Any, writer: RecordWriter, records: Any,
                 options: EngineOptions, stats: Stats, *,
                 on_progress: Optional[Callable[[Stats], None]] = None,
                 on_new_error: Optional[Callable[[Item, APIError], None]] = None,
                 accounting: Optional[Accounting] = None,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.items, self.client, self.writer, self.records = items, client, writer, records
        self.accounting = accounting
        self.options, self.stats = options, stats
        self._clock, self._sleep = clock, sleep
        stats.clock = clock
        self.throttle = Throttle(options.concurrency, options.rpm, options.tpm,
                                 policy=options.retry, clock=clock, sleep=sleep)
        self.on_progress, self.on_new_error = on_progress, on_new_error
        self.outcome = Outcome(stats)
        self._stopping = False
        self._stop_signal: Optional[asyncio.Future[None]] = None
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[Any]] = set()
        self._kinds: set[tuple[str, Optional[int]]] = set()
        self._fatal: Optional[BaseException] = None
        self._grace: Optional[asyncio.Task[None]] = None
        self._sent: set[int] = set()      # items a request went out for, not yet recorded

    async def run(self) -> Outcome:
        """Run every item (or until stopped); raise what made the run impossible."""
        loop = asyncio.get_running_loop()
        self._stop_signal = loop.create_future()
        self.stats.started = self._clock()
        interval = self.options.progress_interval
        ticker = loop.create_task(self._tick(interval)) if self.on_progress and interval else None
        self._workers = [loop.create_task(self._worker()) for _ in range(self.options.concurrency)]
        try:
            await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            if ticker:
                ticker.cancel()
            if self._grace:
                self._grace.cancel()
            self.stats.finished = self._clock()
            self.stats.slowdowns = self.throttle.slowdowns
        if self._fatal is not None:
            raise self._fatal
        try:
            self.writer.drain()
        except FileWriteError as exc:
            self.outcome.stopped, self.outcome.error = "write-error", exc
        return self.outcome

    def interrupt(self) -> None:
        """SIGINT/SIGTERM: stop gracefully; a second one stops at once."""
        if self._stopping:
            self._cancel_all()
        else:
            self.stop("interrupted")

    def stop(self, reason: str) -> None:
        """Start no more items; give requests in flight ``grace`` seconds."""
        if self._stopping:
            return
        self._stopping = True
        self.outcome.stopped = reason
        if self._stop_signal and not self._stop_signal.done():
            self._stop_signal.set_result(None)
        for task in self._workers:
            if task not in self._busy:
                task.cancel()
        self._grace = asyncio.get_running_loop().create_task(self._after_grace())

    async def _after_grace(self) -> None:
        await self._sleep(self.options.grace)
        self._cancel_all()

    def _write_failed(self, exc: FileWriteError) -> None:
        """No record can be written any more: stop every worker at once (what they
        would finish could not be kept), and let the CLI say what to do."""
        if not self._stopping:
            self.outcome.error = exc
            self.stop("write-error")
        self._cancel_all()

    def _cancel_all(self) -> None:
        for task in self._workers:
            task.cancel()

    async def _tick(self, interval: float) -> None:
        while True:
            await self._sleep(interval)
            try:
                self.on_progress(self.stats)  # type: ignore[misc]
            except OSError:    # stderr went away: the run goes on without progress
                return

    async def _worker(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        writer = self.writer
        try:
            for item in self.items:
                if self._stopping:
                    return
                if not writer.has_room(item.seq):
                    await writer.wait_room(item.seq)
                if item.body is None:
                    self._invalid(item)
                else:
                    await self._run_item(item, me)
        except (asyncio.CancelledError, _Dropped):
            return
        except FileWriteError as exc:  # a full disk: stop now, say so, keep what is written
            self._write_failed(exc)
        except BaseException as exc:   # a bad base URL, a bug: the run cannot go on
            if self._fatal is None:
                self._fatal = exc
            self._stopping = True
            self._cancel_all()

    async def _run_item(self, item: Item, me: asyncio.Task[Any]) -> None:
        """Send the item; with a schema, check the reply and re-ask as allowed."""
        started = self._clock()
        body = item.body or {}
        schema = schema_of(body)
        rounds = 1 + (self.options.schema_retries if schema is not None else 0)
        cost: Optional[float] = 0.0
        sent_total = 0                    # HTTP attempts over every round
        for number in range(1, rounds + 1):
            reserved = self._admit(body)
            sent = self._clock()
            try:
                result, attempts = await self._send(item, body, me, first=number == 1)
            except _SendFailed as failed:
                self._account(item, body, reserved, None, failed.error, failed.attempts, sent)
                self._failed(item, failed.error, sent_total + failed.attempts, started)
                return
            sent_total += attempts
            cost = _add(cost, self._account(item, body, reserved, result, None, attempts, sent))
            if schema is None:
                self._succeeded(item, result, sent_total, started, cost)
                return
            from ..core.schema import parse_reply, reask

            try:
                parsed = parse_reply(result.content, schema, number, result.request_id)
            except SchemaValidationError as exc:
                if number == rounds:
                    self._failed(item, exc, sent_total, started, cost)
                    return
                body = reask(body, exc)
                continue
            self._succeeded(item, result, sent_total, started, cost, parsed)
            return

    def _admit(self, body: dict[str, Any]) -> Optional[float]:
        """The budget's reservation for one request; stops the run when it does not fit."""
        if self.accounting is None:
            return None
        reserved = self.accounting.admit(body)
        if reserved is None and self.accounting.refusal() is not None:
            if not self._stopping:
                self.outcome.reason = self.accounting.refusal()
                self.stop("max-cost")
            raise _Dropped()
        return reserved

    def _account(self, item: Item, body: dict[str, Any], reserved: Optional[float], result: Any,
                 exc: Optional[APIError], attempts: int, sent: float) -> Optional[float]:
        """Settle one request's cost and log it; returns its cost (``None``: unknown)."""
        if self.accounting is None:
            return None
        latency = int((self._clock() - sent) * 1000)
        cost = self.accounting.settle(item, body, reserved, result, exc, attempts, latency)
        if result is not None:
            if cost is None:
                self.stats.unpriced += 1
            else:
                self.stats.cost += cost
        return cost

    async def _send(self, item: Item, body: dict[str, Any], me: asyncio.Task[Any], *,
                    first: bool) -> tuple[Any, int]:
        """One request through its retries: (result, attempts), or :class:`_SendFailed`.
        ``first``: the item's first request (from then on it is paid for)."""
        clock = ItemClock(self._clock) if self.options.max_time else None
        deadline = Deadline(self.options.max_time, clock) if clock else Deadline(None)
        attempts = Attempts(self.options.retry, deadline)
        throttle = self.throttle
        cost = estimate_tokens(body, throttle.completion_estimate) \
            if throttle.counts_tokens else 0.0
        while True:
            try:
                result = await self._attempt(item, body, cost, deadline, clock, me,
                                             first and attempts.number == 1)
                return result, attempts.number
            except APIError as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise _SendFailed(exc, attempts.number) from exc
            self.stats.retries += 1
            await self._sleep_unless_stopped(delay)

    async def _attempt(self, item: Item, body: dict[str, Any], cost: float,
                       deadline: Deadline, clock: Optional[ItemClock],
                       me: asyncio.Task[Any], first: bool) -> Any:
        throttle = self.throttle
        if clock is None:
            epoch = await throttle.acquire(cost)
        else:
            clock.hold()
            try:
                epoch = await throttle.acquire(cost)
            finally:
                clock.go()
        self._busy.add(me)
        if first:
            self._sent.add(item.seq)
            self.writer.sent()
        try:
            result = await self.client.chat(body, throttle.observe, deadline=deadline)
        except RateLimitError as exc:
            self.stats.rate_limited += 1
            throttle.rate_limited(epoch, exc.retry_after)
            raise
        finally:
            throttle.release()
            self._busy.discard(me)
        throttle.succeeded(cost, result.usage)
        return result

    async def _sleep_unless_stopped(self, delay: float) -> None:
        """Back off for ``delay``, cut short when the run stops (the item is dropped)."""
        assert self._stop_signal is not None
        if not self._stopping:
            nap = asyncio.ensure_future(self._sleep(delay))
            try:
                await asyncio.wait([self._stop_signal, nap], return_when=asyncio.FIRST_COMPLETED)
            finally:
                nap.cancel()
        if self._stopping:
            raise _Dropped()

    def _succeeded(self, item: Item, result: Any, attempts: int, started: float,
                   cost: Optional[float] = None, parsed: Any = None) -> None:
        stats = self.stats
        usage = result.usage
        if usage:
            stats.prompt_tokens += usage.get("prompt_tokens") or 0
            stats.completion_tokens += usage.get("completion_tokens") or 0
        latency = int((self._clock() - started) * 1000)
        self.writer.put(item.seq, self.records.ok(item, result, attempts, latency, cost, parsed),
                        self._paid(item))
        stats.ok += 1
        stats.done += 1

    def _failed(self, item: Item, exc: APIError, attempts: int, started: float,
                cost: Optional[float] = None) -> None:
        latency = int((self._clock() - started) * 1000)
        self.writer.put(item.seq, self.records.error(item, exc, attempts, latency, cost),
                        self._paid(item))
        stats = self.stats
        stats.failed += 1
        stats.done += 1
        kind = error_kind(exc)
        stats.errors[kind] = stats.errors.get(kind, 0) + 1
        reason = "fail-fast" if self.options.fail_fast else run_stopping(exc)
        if reason:    # reported once, as the run's error, not as a warning per item
            if not self._stopping:
                self.outcome.error = exc
                self.stop(reason)
            return
        if (kind, exc.status) not in self._kinds:
            self._kinds.add((kind, exc.status))
            if self.on_new_error:
                self.on_new_error(item, exc)

    def _paid(self, item: Item) -> bool:
        """Whether a request went out for ``item`` (its record settles one paid)."""
        if item.seq in self._sent:
            self._sent.discard(item.seq)
            return True
        return False

    def _invalid(self, item: Item) -> None:
        self.writer.put(item.seq, self.records.error(item, None, 0, 0))
        stats = self.stats
        stats.failed += 1
        stats.invalid += 1
        stats.done += 1
        stats.errors["invalid_input"] = stats.errors.get("invalid_input", 0) + 1


def _add(total: Optional[float], cost: Optional[float]) -> Optional[float]:
    return None if total is None or cost is None else total + cost


async def run_with_signals(engine: Engine) -> Outcome:
    """Run ``engine`` with SIGINT and SIGTERM routed to :meth:`Engine.interrupt`."""
    import signal

    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, engine.interrupt)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass   # Windows, or not the main thread: Ctrl-C stays KeyboardInterrupt
    try:
        return await engine.run()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await engine.client.aclose()
