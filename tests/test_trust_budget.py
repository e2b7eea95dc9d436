"""Issue 11, point 4: --max-time bounds everything a command does, api_key_cmd and
rate-limit waits included; reset headers in every form are read and capped."""

from __future__ import annotations

import os
import sys
import time

import pytest

from llmcli.batch.limiter import Throttle
from llmcli.core.errors import APITimeoutError, ConfigError, RateLimitError
from llmcli.core.retry import RetryPolicy, next_delay, parse_retry_after

from .conftest import run_cli

NOW = 1_800_000_000.0     # a fixed wall clock for absolute times


@pytest.mark.parametrize("text, seconds", [
    ("6m0s", 360.0), ("1.5s", 1.5), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("7", 7.0),
    ("0.25", 0.25), (str(int(NOW) + 30), 30.0), (str(int(NOW * 1000) + 2500), 2.5),
    (str(int(NOW) - 30), 0.0), ("2027-01-15T08:00:30Z", 30.0),
    ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),
    ("", None), ("soon", None), ("-3", None), ("inf", None), ("nan", None), ("5x", None)])
def test_parse_wait_reads_every_form(text: str, seconds: float) -> None:
    now = _epoch_2027() if "2027" in text else NOW
    from llmcli.core.retry import parse_wait

    got = parse_wait(text, now)
    assert got == (None if seconds is None else pytest.approx(seconds, abs=1e-6))


def _epoch_2027() -> float:
    import datetime

    return datetime.datetime(2027, 1, 15, 8, 0, 0, tzinfo=datetime.timezone.utc).timestamp()


def test_retry_after_in_duration_form_is_capped_like_seconds() -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    exc = RateLimitError("HTTP 429", status=429)
    assert parse_retry_after({"retry-after": "6m0s"}) == 360.0
    assert next_delay(exc, 0, policy, retry_after=360.0) is None       # past the cap: give up
    assert next_delay(exc, 0, policy, retry_after=1.5, remaining=1.0) is None   # past budget
    assert next_delay(exc, 0, policy, retry_after=1.5) == 1.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("reset", ["6m0s", "360", "360000ms", "epoch+360"])
def test_a_reset_far_away_pauses_batch_no_longer_than_the_cap(reset: str) -> None:
    if reset == "epoch+360":   # an absolute Unix time, made here so collection is stable
        reset = str(int(time.time()) + 360)
    clock = FakeClock()
    throttle = Throttle(4, clock=clock, sleep=clock.sleep, policy=RetryPolicy(max_retry_after=60))
    throttle.active = 2
    throttle.headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": reset})
    assert throttle.pause_until == pytest.approx(clock.now + 60)


def test_a_reset_in_milliseconds_form_pauses_that_long() -> None:
    clock = FakeClock()
    throttle = Throttle(4, clock=clock, sleep=clock.sleep)
    throttle.active = 1
    throttle.headers({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20ms"})
    assert throttle.pause_until == pytest.approx(clock.now + 0.02)


# -- api_key_cmd: a real shell, bounded by the budget ------------------------------------

def test_key_command_that_leaves_a_child_holding_the_pipe_returns_at_once() -> None:
    from llmcli.config.keycmd import run_key_command

    started = time.monotonic()
    key = run_key_command("echo sk-from-the-manager; sleep 30 &", budget=None)
    assert key == "sk-from-the-manager"
    assert time.monotonic() - started < 5          # not the 30 s the child holds the pipe


def test_key_command_is_cut_at_the_budget() -> None:
    from llmcli.config.keycmd import run_key_command

    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="total time budget of 0.5s"):
        run_key_command("sleep 30; echo too-late", budget=0.5)
    assert time.monotonic() - started < 5


def test_key_command_that_fails_is_a_config_error() -> None:
    from llmcli.config.keycmd import run_key_command

    with pytest.raises(ConfigError, match="exit 3"):
        run_key_command("echo partial; exit 3")
    with pytest.raises(ConfigError, match="printed nothing"):
        run_key_command("true")


def test_max_time_covers_api_key_cmd_end_to_end(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"api_key_cmd: {sys.executable} -c 'import time; time.sleep(30)'\n")
    config.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    started = time.monotonic()
    done = run_cli("--config", str(config), "chat", "hi", "--max-time", "1",
                   "--base-url", "http://127.0.0.1:9/v1", env=env)
    assert time.monotonic() - started < 10
    assert done.returncode == 6, done.stderr
    assert "total time budget of 1s" in done.stderr and done.stderr.count("\n") == 1
