"""The batch scheduler and its pacing, with a fake client and fake time (the engine's
clock and sleep, or an event loop on virtual time, tests/fake_time.py): no network, and
nothing waits for real."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Optional

import pytest

from llmcli.batch.engine import Engine, EngineOptions, Stats, estimate_tokens
from llmcli.batch.limiter import RateLimiter, Throttle, parse_duration
from llmcli.batch.reader import Item
from llmcli.batch.records import JsonlRecords
from llmcli.batch.writer import RecordWriter
from llmcli.core.chat import ChatResult
from llmcli.core.errors import AuthenticationError, RateLimitError, ServerError
from llmcli.core.retry import RetryPolicy

from .fake_time import VirtualTimeLoop, run_virtual

FAST_RETRY = RetryPolicy(max_retries=3, initial_delay=0.001, max_delay=0.002)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


@pytest.mark.parametrize("text, seconds", [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5),
    ("", None), ("soon", None), ("5x", None), (None, None)])
def test_parse_duration(text: Optional[str], seconds: Optional[float]) -> None:
    assert parse_duration(text) == seconds


def test_rate_limiter_paces_evenly_after_its_burst() -> None:
    clock = FakeClock()
    per_second = RateLimiter(60, clock)
    assert [per_second.reserve(1) for _ in range(3)] == [0.0, 1.0, 2.0]
    ten_a_second = RateLimiter(600, clock)
    waits = [round(ten_a_second.reserve(1), 3) for _ in range(12)]
    assert waits[:10] == [0.0] * 10 and waits[10:] == [0.1, 0.2]


def test_rate_limiter_corrects_an_estimate() -> None:
    clock = FakeClock()
    tokens = RateLimiter(6000, clock)           # 100 tokens a second, burst 100
    assert tokens.reserve(100) == 0.0
    tokens.adjust(+200)                          # the reply used 200 more than estimated
    assert tokens.reserve(1) == pytest.approx(2.01)           # 3 s of debt, less the burst
    tokens.adjust(-300)                          # refunds bring the budget back
    assert tokens.reserve(1) == 0.0


def test_throttle_halves_once_per_slowdown_pauses_everyone_and_recovers() -> None:
    clock = FakeClock()
    throttle = Throttle(8, clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        epoch = await throttle.acquire()
        throttle.rate_limited(epoch, retry_after=2.0)
        throttle.rate_limited(epoch, retry_after=2.0)   # sent before the slow-down: old news
        assert (throttle.limit, throttle.slowdowns) == (4.0, 1)
        throttle.release()
        await throttle.acquire()                        # waits out the pause
        assert clock.slept == [2.0]
        throttle.release()
        for _ in range(40):
            throttle.succeeded()
        assert throttle.limit == 8.0
    asyncio.run(scenario())


def test_a_retry_after_the_policy_would_not_wait_out_does_not_stall_the_scheduler() -> None:
    clock = FakeClock()
    policy = RetryPolicy(initial_delay=0.5, max_retry_after=60.0)
    throttle = Throttle(8, policy=policy, clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        epoch = await throttle.acquire()
        throttle.rate_limited(epoch, retry_after=3600.0)   # the item itself gives up
        throttle.release()
        await throttle.acquire()
        throttle.rate_limited(throttle.epoch, retry_after=60.0)   # honoured, as by retries
        throttle.release()
        await throttle.acquire()
    asyncio.run(scenario())
    assert clock.slept == [0.5, 60.0]


def test_throttle_holds_requests_beyond_the_limit() -> None:
    async def scenario() -> list[str]:
        throttle = Throttle(1)
        order = []
        await throttle.acquire()

        async def second() -> None:
            await throttle.acquire()
            order.append("second started")
        task = asyncio.create_task(second())
        await asyncio.sleep(10)
        order.append("first done")
        throttle.release()
        await task
        return order
    assert run_virtual(scenario()) == ["first done", "second started"]


def test_throttle_follows_ratelimit_headers() -> None:
    clock = FakeClock()
    throttle = Throttle(4, clock=clock, sleep=clock.sleep)
    throttle.active = 2
    throttle.headers({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "9s"})
    assert throttle.pause_until == 0.0
    throttle.headers({"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "0m45s"})
    assert throttle.pause_until == pytest.approx(clock.now + 45)


def test_throttle_follows_anthropic_ratelimit_headers_with_rfc3339_resets() -> None:
    """Anthropic names its headers the other way round and sends the reset as a time."""
    import datetime

    clock = FakeClock()
    throttle = Throttle(4, clock=clock, sleep=clock.sleep)
    throttle.active = 2
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)
    reset = soon.isoformat().replace("+00:00", "Z")
    throttle.headers({"anthropic-ratelimit-requests-remaining": "3",
                      "anthropic-ratelimit-requests-reset": reset})
    assert throttle.pause_until == 0.0
    throttle.headers({"anthropic-ratelimit-output-tokens-remaining": "10",
                      "anthropic-ratelimit-output-tokens-reset": reset})
    assert throttle.pause_until == pytest.approx(clock.now + 30, abs=2)


def test_estimate_tokens_counts_prompt_and_reply_budget() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}
    assert estimate_tokens(body, 256) == 100 + 4 + 50
    assert estimate_tokens({"messages": [{"role": "user", "content": "abcd"}]}, 256) == 1 + 4 + 256


# -- the engine, with a fake client ------------------------------------------------------


class FakeClient:
    """Answers ``echo: <prompt>``; ``script[prompt]`` lists errors to raise first."""

    def __init__(self, script: Optional[dict[str, list[Exception]]] = None,
                 delay: Any = 0.0) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.delay = delay
        self.calls: list[str] = []
        self.on_call: Any = lambda n: None

    async def chat(self, body: dict[str, Any], on_response: Any = None, *, deadline: Any = None) -> ChatResult:
        if deadline is not None:
            deadline.check()            # as the real client does before sending
        prompt = body["messages"][-1]["content"]
        self.calls.append(prompt)
        self.on_call(len(self.calls))
        delay = self.delay(prompt) if callable(self.delay) else self.delay
        await asyncio.sleep(delay)
        if self.script.get(prompt):
            raise self.script[prompt].pop(0)
        usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        return ChatResult(content=f"echo: {prompt}", finish_reason="stop", usage=usage, raw={})

    async def aclose(self) -> None:
        pass


class Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.data.splitlines()]


def make_items(prompts: list[str]) -> list[Item]:
    return [Item(n, n + 1, str(n + 1), {"model": "m", "messages": [{"role": "user", "content": p}]})
            for n, p in enumerate(prompts)]


def run_engine(client: FakeClient, prompts: list[str], *, window: int = 64,
               **options: Any) -> tuple[Engine, Sink]:
    sink = Sink()
    writer = RecordWriter(sink, ordered=options.pop("ordered", True), window=window)  # type: ignore[arg-type]
    options.setdefault("retry", FAST_RETRY)
    items = make_items(prompts)
    engine = start_engine(items, client, writer, EngineOptions(**options))
    return engine, sink


def start_engine(items: list[Item], client: FakeClient, writer: RecordWriter,
                 options: EngineOptions, **kwargs: Any) -> Engine:
    """Run an engine to its end on virtual time; ``engine.stats.elapsed`` is that time."""
    loop = VirtualTimeLoop()
    engine = Engine(iter(items), client, writer, JsonlRecords(), options, Stats(len(items)),
                    clock=loop.time, **kwargs)
    run_virtual(engine.run(), loop)
    return engine


def test_every_item_gets_one_record_in_input_order_whatever_finishes_first() -> None:
    rng = random.Random(7)
    prompts = [f"p{n}" for n in range(200)]
    delays = {p: rng.random() * 0.004 for p in prompts}
    engine, sink = run_engine(FakeClient(delay=delays.get), prompts, window=16, concurrency=8)
    records = sink.records()
    assert [r["content"] for r in records] == [f"echo: {p}" for p in prompts]
    assert engine.stats.ok == engine.stats.done == 200 and engine.outcome.stopped is None


def test_retries_follow_the_policy_and_exhaustion_gives_an_error_record() -> None:
    script = {"flaky": [ServerError("HTTP 500", status=500)] * 2,
              "broken": [ServerError("HTTP 500", status=500)] * 10}
    engine, sink = run_engine(FakeClient(script), ["flaky", "broken", "fine"], concurrency=3)
    flaky, broken, fine = sink.records()
    assert (flaky["status"], flaky["attempts"]) == ("ok", 3)
    assert (broken["status"], broken["attempts"], broken["error"]["status"]) == ("error", 4, 500)
    assert fine["attempts"] == 1
    assert engine.stats.retries == 2 + 3 and engine.stats.errors == {"server_error": 1}


def test_a_429_pauses_the_scheduler_and_is_retried() -> None:
    limited = RateLimitError("HTTP 429", status=429)
    limited.retry_after = 0.01
    engine, sink = run_engine(FakeClient({"a": [limited]}), ["a", "b"], concurrency=2)
    assert [r["status"] for r in sink.records()] == ["ok", "ok"]
    assert engine.stats.rate_limited == 1 and engine.throttle.slowdowns == 1


def test_max_time_does_not_count_the_wait_for_a_rate_slot() -> None:
    client = FakeClient()
    # 600 rpm: ten at once, then one every 0.1 s; the last waits 0.5 s for its slot.
    engine, sink = run_engine(client, [f"p{n}" for n in range(15)], concurrency=15,
                              rpm=600, max_time=0.05)
    assert [r["status"] for r in sink.records()] == ["ok"] * 15
    assert len(client.calls) == 15
    assert engine.stats.elapsed == pytest.approx(0.5, abs=0.01)   # virtual seconds


def test_fail_fast_stops_at_the_first_failure() -> None:
    denied = AuthenticationError("HTTP 401: bad key", status=401)
    prompts = ["bad"] + [f"p{n}" for n in range(50)]
    client = FakeClient({"bad": [denied]}, delay=0.002)
    engine, sink = run_engine(client, prompts, concurrency=2, fail_fast=True, grace=1.0)
    outcome = engine.outcome
    assert outcome.stopped == "fail-fast" and outcome.error is denied
    assert len(client.calls) < 10 and outcome.not_run > 40
    assert sink.records()[0]["error"]["type"] == "authentication_error"


def test_interrupt_lets_requests_in_flight_finish_and_starts_no_more() -> None:
    engines: list[Engine] = []
    client = FakeClient(delay=0.01)
    client.on_call = lambda n: engines[0].interrupt() if n == 6 else None
    prompts = [f"p{n}" for n in range(100)]
    sink = Sink()
    loop = VirtualTimeLoop()
    engine = Engine(iter(make_items(prompts)), client, RecordWriter(sink),  # type: ignore[arg-type]
                    JsonlRecords(), EngineOptions(concurrency=4, grace=5.0), Stats(100),
                    clock=loop.time)
    engines.append(engine)
    run_virtual(engine.run(), loop)
    records = sink.records()
    assert engine.outcome.stopped == "interrupted" and engine.outcome.not_run == 94
    assert len(client.calls) == 6          # the signal came as the sixth request started
    assert [r["id"] for r in records] == [str(n) for n in range(1, 7)]   # all six finished


def test_a_request_that_outlives_the_grace_is_dropped_without_a_record() -> None:
    engines: list[Engine] = []
    client = FakeClient(delay=lambda p: 60.0 if p == "hang" else 0.0)
    client.on_call = lambda n: engines[0].interrupt() if n == 3 else None
    sink = Sink()
    loop = VirtualTimeLoop()
    engine = Engine(iter(make_items(["ok", "hang", "later", "never"])), client,
                    RecordWriter(sink, ordered=False), JsonlRecords(),  # type: ignore[arg-type]
                    EngineOptions(concurrency=2, grace=5.0), Stats(4), clock=loop.time)
    engines.append(engine)
    run_virtual(engine.run(), loop)
    assert [r["content"] for r in sink.records()] == ["echo: ok", "echo: later"]
    assert client.calls == ["ok", "hang", "later"] and engine.outcome.not_run == 2
    assert engine.stats.elapsed == pytest.approx(5.0)    # the grace, not the 60 s hang


def test_a_failed_write_stops_the_run_with_that_error() -> None:
    class FullDisk(Sink):
        def write(self, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    writer = RecordWriter(FullDisk(), ordered=True)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="No space"):
        start_engine(make_items(["a", "b"]), FakeClient(), writer, EngineOptions(concurrency=2))


def test_progress_is_reported_while_the_run_goes_on() -> None:
    seen: list[int] = []
    sink = Sink()
    start_engine(make_items([f"p{n}" for n in range(20)]), FakeClient(delay=0.35),
                 RecordWriter(sink), EngineOptions(concurrency=2, progress_interval=1.0),  # type: ignore[arg-type]
                 on_progress=lambda stats: seen.append(stats.done))
    # 20 items, two at a time, 0.35 s each: 3.5 s, a tick every second.
    assert seen == [4, 10, 16]
    assert len(sink.records()) == 20
