"""The retry policy: the pure functions first, then the schedule the real clients keep,
with respx answering and a recording fake sleep (nothing here ever really waits)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any, Callable, Optional

import httpx
import pytest
import respx

from llmcli.core import retry
from llmcli.core.aclient import AsyncClient
from llmcli.core.client import Client
from llmcli.core.errors import (APIConnectionError, APIError, APIStatusError, APITimeoutError,
                                AuthenticationError, BadRequestError, NotFoundError,
                                PermissionDeniedError, RateLimitError, ServerError, status_error)
from llmcli.core.options import ClientOptions
from llmcli.core.retry import (Attempts, Deadline, RetryPolicy, backoff_delay, next_delay,
                               parse_retry_after)

BASE = "https://api.test/v1"
CHAT_URL = BASE + "/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
REPLY = {"id": "c1", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": "ok"}}]}
NOW = 1_700_000_000.0


def rate_limited(**headers: str) -> RateLimitError:
    exc = status_error(429, b"")
    exc.retry_after = parse_retry_after(headers)
    return exc


# --- parse_retry_after -------------------------------------------------------------

@pytest.mark.parametrize("headers, expected", [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "10"}, 0.25),     # ms wins
    ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),      # unreadable ms: fall back
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after": "1.25"}, 1.25),
    ({"retry-after": " 4 "}, 4.0),
])
def test_parse_retry_after_numbers(headers: dict[str, str], expected: float) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_http_date_against_a_fixed_now() -> None:
    future = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": future}, now=NOW) == 30.0
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=NOW) == 0.0
    assert parse_retry_after({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"},
                             now=NOW) == 30.0


@pytest.mark.parametrize("value", ["soon", "", "Tuesday", "1 minute", "nan", "inf", "-5",
                                   "-0.5", "Mon, 99 Foo 2023 25:61:00 GMT"])
def test_parse_retry_after_garbage_and_negative_mean_no_hint(value: str) -> None:
    assert parse_retry_after({"retry-after": value}, now=NOW) is None
    assert parse_retry_after({"retry-after-ms": value}, now=NOW) is None


def test_parse_retry_after_absent_and_case_insensitive_headers() -> None:
    assert parse_retry_after({}, now=NOW) is None
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "100"})) == 0.1


# --- backoff_delay and next_delay ----------------------------------------------------

def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy()
    delays = [backoff_delay(i, policy, rand=lambda: 0.0) for i in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    custom = RetryPolicy(initial_delay=1.0, max_delay=3.0)
    assert [backoff_delay(i, custom, rand=lambda: 0.0) for i in range(4)] == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize("index", range(6))
def test_jitter_only_shortens_by_at_most_a_quarter(index: int) -> None:
    policy = RetryPolicy()
    full = backoff_delay(index, policy, rand=lambda: 0.0)
    assert backoff_delay(index, policy, rand=lambda: 1.0) == pytest.approx(full * 0.75)
    assert backoff_delay(index, policy, rand=lambda: 0.5) == pytest.approx(full * 0.875)
    for _ in range(50):
        assert full * 0.75 <= backoff_delay(index, policy) <= full


def test_next_delay_honours_retry_after() -> None:
    policy = RetryPolicy()
    assert next_delay(rate_limited(), 0, policy, retry_after=2.0) == 2.0
    assert next_delay(rate_limited(), 0, policy, retry_after=0.0) == 0.0
    assert next_delay(rate_limited(), 2, policy, retry_after=60.0) == 60.0   # the limit itself


def test_next_delay_refuses_a_retry_after_past_the_limit() -> None:
    assert next_delay(rate_limited(), 0, RetryPolicy(), retry_after=60.5) is None
    assert next_delay(rate_limited(), 0, RetryPolicy(max_retry_after=5), retry_after=6) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 418])
def test_next_delay_never_retries_a_non_retryable_error(status: int) -> None:
    assert next_delay(status_error(status, b""), 0, RetryPolicy(), retry_after=1.0) is None


def test_next_delay_uses_backoff_without_a_hint_and_stops_at_max_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    exc = status_error(503, b"")
    assert next_delay(exc, 0, policy, rand=lambda: 0.0) == 0.5
    assert next_delay(exc, 1, policy, rand=lambda: 0.0) == 1.0
    assert next_delay(exc, 2, policy, rand=lambda: 0.0) is None
    assert next_delay(exc, 0, RetryPolicy(max_retries=0)) is None
    assert next_delay(APIConnectionError("reset"), 0, policy, rand=lambda: 0.0) == 0.5


def test_next_delay_respects_the_remaining_budget() -> None:
    exc = status_error(503, b"")
    assert next_delay(exc, 0, RetryPolicy(), remaining=1.0, rand=lambda: 0.0) == 0.5
    assert next_delay(exc, 0, RetryPolicy(), remaining=0.5, rand=lambda: 0.0) is None
    assert next_delay(exc, 0, RetryPolicy(), remaining=0.4, rand=lambda: 0.0) is None
    assert next_delay(rate_limited(), 0, RetryPolicy(), retry_after=5, remaining=3) is None


# --- Deadline --------------------------------------------------------------------------

class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_on_its_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock=clock)
    assert deadline.remaining() == 10
    clock.now += 4
    assert deadline.remaining() == 6
    assert deadline.cap(30) == 6
    assert deadline.cap(2) == 2
    assert deadline.cap(None) == 6
    deadline.check()                       # still time left
    clock.now += 6
    with pytest.raises(APITimeoutError, match="total time budget of 10s"):
        deadline.check()
    with pytest.raises(APITimeoutError):
        deadline.cap(5)


@pytest.mark.parametrize("seconds", [None, 0])
def test_no_deadline_means_no_limit(seconds: Optional[float]) -> None:
    clock = FakeClock()
    deadline = Deadline(seconds, clock=clock)
    clock.now += 10_000
    assert deadline.remaining() is None
    assert deadline.cap(7) == 7 and deadline.cap(None) is None
    deadline.check()
    assert Deadline(seconds, clock=clock).remaining() is None


# --- Attempts: the shared loop ---------------------------------------------------------

def run_attempts(outcomes: list[Any], policy: RetryPolicy = RetryPolicy(),
                 deadline: Optional[Deadline] = None) -> tuple[Any, list[float], int]:
    """Drive Attempts as the clients do; ``outcomes`` are raised or returned in turn."""
    sleeps: list[float] = []
    calls = 0

    def send() -> Any:
        nonlocal calls
        outcome = outcomes[calls]
        calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def loop() -> Any:
        attempts = Attempts(policy, deadline, rand=lambda: 0.0)
        while True:
            try:
                return send(), attempts.number
            except APIError as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise
            sleeps.append(delay)

    try:
        return loop(), sleeps, calls
    except BaseException as exc:  # noqa: BLE001 - the tests inspect what escaped
        return exc, sleeps, calls


def test_attempts_retries_then_returns_with_the_attempt_number() -> None:
    result, sleeps, calls = run_attempts([status_error(503, b""), rate_limited(**{"retry-after": "3"}),
                                          "ok"])
    assert result == ("ok", 3)
    assert sleeps == [0.5, 3.0] and calls == 3


def test_attempts_gives_up_and_marks_the_error_with_the_attempt_count() -> None:
    exc, sleeps, calls = run_attempts([status_error(500, b"")] * 3, RetryPolicy(max_retries=2))
    assert isinstance(exc, ServerError) and exc.attempts == 3
    assert sleeps == [0.5, 1.0] and calls == 3


def test_attempts_lets_foreign_exceptions_through_untouched() -> None:
    exc, sleeps, calls = run_attempts([KeyError("bug"), "never"])
    assert isinstance(exc, KeyError) and calls == 1 and sleeps == []


def test_attempts_stops_when_the_budget_cannot_cover_the_wait() -> None:
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    exc, sleeps, calls = run_attempts([rate_limited(**{"retry-after": "5"}), "ok"],
                                      deadline=deadline)
    assert isinstance(exc, RateLimitError) and calls == 1 and sleeps == []


# --- the schedule through the real clients -----------------------------------------------

@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact backoff waits: 0.5, 1, 2, ..."""
    monkeypatch.setattr(retry, "JITTER", 0.0)


def options(**kwargs: Any) -> ClientOptions:
    return ClientOptions(base_url=BASE, api_key="sk-test-key-000000000000", **kwargs)


def reply(status: int = 200, **headers: str) -> httpx.Response:
    if status == 200:
        return httpx.Response(200, json=REPLY, headers=headers)
    return httpx.Response(status, json={"error": {"message": f"status {status}",
                                                  "type": "x"}}, headers=headers)


def do_call(kind: str, opts: ClientOptions, sleeps: list[float],
            op: str = "chat") -> Any:
    """One chat (or list_models) with the sync or the async client; fake sleep records."""
    if kind == "sync":
        with Client(opts, sleep=sleeps.append) as client:
            return client.chat(dict(BODY)) if op == "chat" else client.list_models()

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    async def main() -> Any:
        async with AsyncClient(opts, backend="httpx", sleep=fake_sleep) as client:
            return await (client.chat(dict(BODY)) if op == "chat" else client.list_models())

    return asyncio.run(main())


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except APIError as exc:
        return exc


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_429_429_200_retries_with_exponential_backoff(kind: str, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(429), reply(429), reply(200)])
        result = do_call(kind, options(), sleeps)
    assert result.content == "ok" and result.attempts == 3
    assert route.call_count == 3
    assert sleeps == [0.5, 1.0]


@KINDS
def test_jittered_waits_stay_within_bounds(kind: str) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(side_effect=[reply(503)] * 3 + [reply(200)])
        assert do_call(kind, options(), sleeps).attempts == 4
    assert len(sleeps) == 3
    for delay, full in zip(sleeps, [0.5, 1.0, 2.0]):
        assert full * 0.75 <= delay <= full


@KINDS
@pytest.mark.parametrize("headers, expected", [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "0.25"}, 0.25),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "20", "retry-after": "9"}, 0.02),
])
def test_retry_after_is_honoured_exactly(kind: str, headers: dict[str, str],
                                         expected: float) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(429, **headers), reply(200)])
        assert do_call(kind, options(), sleeps).content == "ok"
    assert route.call_count == 2
    assert sleeps == [expected]


@KINDS
def test_retry_after_zero_or_past_date_retries_at_once(kind: str) -> None:
    sleeps: list[float] = []
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(429, **{"retry-after": "0"}),
                                                      reply(503, **{"retry-after": past}),
                                                      reply(200)])
        assert do_call(kind, options(), sleeps).attempts == 3
    assert route.call_count == 3
    assert sleeps == []


@KINDS
@pytest.mark.parametrize("headers", [{"retry-after": "120"}, {"retry-after-ms": "90000"}])
def test_retry_after_beyond_the_limit_gives_up_at_once(kind: str, headers: dict[str, str]) -> None:
    far = {"retry-after": email.utils.formatdate(time.time() + 3600, usegmt=True)}
    for hdrs in (headers, far):
        sleeps: list[float] = []
        with respx.mock() as mock:
            route = mock.post(CHAT_URL).mock(side_effect=[reply(429, **hdrs), reply(200)])
            exc = outcome(lambda: do_call(kind, options(), sleeps))
        assert isinstance(exc, RateLimitError)
        assert route.call_count == 1 and sleeps == []


@KINDS
@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadError("reset"),
                                   httpx.RemoteProtocolError("dropped")])
def test_connection_errors_are_retried(kind: str, error: Exception, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[error, error, reply(200)])
        assert do_call(kind, options(), sleeps).attempts == 3
    assert route.call_count == 3
    assert sleeps == [0.5, 1.0]


@KINDS
@pytest.mark.parametrize("error", [httpx.ConnectTimeout("slow connect"),
                                   httpx.ReadTimeout("slow read"), httpx.PoolTimeout("pool")])
def test_timeouts_are_retried(kind: str, error: Exception, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[error, reply(200)])
        assert do_call(kind, options(), sleeps).content == "ok"
    assert route.call_count == 2 and sleeps == [0.5]


@KINDS
def test_persistent_connection_failure_ends_in_a_connection_error(kind: str,
                                                                  no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=httpx.ConnectError("refused"))
        exc = outcome(lambda: do_call(kind, options(), sleeps))
    assert isinstance(exc, APIConnectionError) and not isinstance(exc, APITimeoutError)
    assert "api.test" in exc.message
    assert exc.attempts == 4 and route.call_count == 4
    assert sleeps == [0.5, 1.0, 2.0]


@KINDS
def test_persistent_timeout_ends_in_a_timeout_error(kind: str, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=httpx.ReadTimeout("slow"))
        exc = outcome(lambda: do_call(kind, options(retry=RetryPolicy(max_retries=1)), sleeps))
    assert isinstance(exc, APITimeoutError)
    assert route.call_count == 2 and sleeps == [0.5]


@KINDS
@pytest.mark.parametrize("status, cls", [(400, BadRequestError), (401, AuthenticationError),
                                         (403, PermissionDeniedError), (404, NotFoundError),
                                         (422, BadRequestError), (418, APIStatusError)])
def test_client_errors_are_never_retried(kind: str, status: int, cls: type) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(status, **{"retry-after": "1"}),
                                                      reply(200)])
        exc = outcome(lambda: do_call(kind, options(), sleeps))
    assert type(exc) is cls and exc.status == status
    assert exc.message == f"HTTP {status}: status {status}"
    assert route.call_count == 1 and sleeps == []


@KINDS
@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(kind: str, status: int, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(status), reply(200)])
        assert do_call(kind, options(), sleeps).attempts == 2
    assert route.call_count == 2 and sleeps == [0.5]


@KINDS
def test_max_retries_zero_means_one_attempt(kind: str) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(429), reply(200)])
        exc = outcome(lambda: do_call(kind, options(retry=RetryPolicy(max_retries=0)), sleeps))
    assert isinstance(exc, RateLimitError) and exc.attempts == 1
    assert route.call_count == 1 and sleeps == []


@KINDS
def test_retries_are_exhausted_after_max_retries(kind: str, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(503)] * 3 + [reply(200)])
        exc = outcome(lambda: do_call(kind, options(retry=RetryPolicy(max_retries=2)), sleeps))
    assert isinstance(exc, ServerError) and exc.attempts == 3
    assert route.call_count == 3 and sleeps == [0.5, 1.0]


@KINDS
def test_a_wait_longer_than_the_remaining_budget_is_not_taken(kind: str) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[reply(429, **{"retry-after": "30"}),
                                                      reply(200)])
        exc = outcome(lambda: do_call(kind, options(max_time=5.0), sleeps))
    assert isinstance(exc, RateLimitError)
    assert route.call_count == 1 and sleeps == []


@KINDS
def test_list_models_is_retried_too(kind: str, no_jitter: None) -> None:
    sleeps: list[float] = []
    with respx.mock() as mock:
        route = mock.get(BASE + "/models").mock(side_effect=[
            httpx.ConnectError("refused"), httpx.Response(200, json={"data": [{"id": "a"}]})])
        assert do_call(kind, options(), sleeps, op="models") == [{"id": "a"}]
    assert route.call_count == 2 and sleeps == [0.5]


@KINDS
def test_the_total_budget_runs_on_the_clients_clock(kind: str, no_jitter: None) -> None:
    """--max-time on fake time: each fake sleep moves the clock, and a retry that could
    not start before the budget runs out is not attempted; nothing waits for real."""
    now = [0.0]
    sleeps: list[float] = []

    def nap(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    async def anap(seconds: float) -> None:
        nap(seconds)

    opts = options(max_time=10.0, retry=RetryPolicy(max_retries=10, initial_delay=4.0,
                                                    max_delay=8.0))
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(return_value=reply(503))
        if kind == "sync":
            with Client(opts, sleep=nap, clock=lambda: now[0]) as client:
                failed = outcome(lambda: client.chat(dict(BODY)))
        else:
            async def main() -> Any:
                async with AsyncClient(opts, backend="httpx", sleep=anap,
                                       clock=lambda: now[0]) as client:
                    return await client.chat(dict(BODY))
            failed = outcome(lambda: asyncio.run(main()))
    assert isinstance(failed, ServerError)
    # 4 s of backoff fit in the 10 s; the next 8 s would end after the budget.
    assert route.call_count == 2 and sleeps == [4.0]
    assert failed.attempts == 2
