"""Timing commands: interleaved runs, wall time and peak RSS of each, median [min-max].

Stdlib only, so the runner needs nothing installed. A round runs every command once,
in turn; runs are repeated round after round, so a noisy second costs every command
alike and each ratio compares figures taken side by side.

Peak RSS comes from the warm-up runs, made under GNU time (/usr/bin/time -f %M): a child
started from this Python process would report at least this process's own RSS (Linux
carries the parent's high-water mark across fork and exec), GNU time's child does not.
The timed runs go without the wrapper, so they carry no extra process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence


@dataclass
class Command:
    """One thing to time: a command line, what it needs, and how to check its output."""

    label: str
    argv: Sequence[str]
    env: Mapping[str, str]
    expect: Optional[str] = None          # text its stdout must contain (checked once)
    note: str = ""                        # shown in the table, e.g. what was left out
    unavailable: str = ""                 # set when it cannot run here: why
    times: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)

    def summary(self) -> Optional["Summary"]:
        if not self.times:
            return None
        return Summary(statistics.median(self.times), min(self.times), max(self.times),
                       statistics.median(self.rss_kb) / 1024 if self.rss_kb else None,
                       len(self.times))


@dataclass
class Summary:
    """Median, min and max seconds over ``runs``, and the median peak RSS in MiB."""

    median: float
    low: float
    high: float
    rss_mb: Optional[float]
    runs: int


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_once(argv: Sequence[str], env: Mapping[str, str],
             capture: bool = False) -> tuple[float, int, bytes]:
    """Run ``argv`` with stdin, stdout and stderr on /dev/null (or both outputs captured);
    return the wall time, the exit status and the output."""
    stdout = subprocess.PIPE if capture else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.STDOUT if capture else subprocess.DEVNULL)
    out = proc.stdout.read() if capture and proc.stdout else b""
    code = proc.wait()
    return time.perf_counter() - started, code, out


def peak_rss_kb(argv: Sequence[str], env: Mapping[str, str]) -> Optional[int]:
    """Run ``argv`` once under GNU time; its peak RSS in KiB (None without GNU time)."""
    if GNU_TIME is None:
        run_once(argv, env)
        return None
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([GNU_TIME, "-f", "%M", "-o", report.name, *argv], env=dict(env),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        text = report.read().split()
    return int(text[-1]) if text and text[-1].isdigit() else None


def check(command: Command) -> None:
    """Run once and make sure the command works before timing it; if it does not, mark
    it unavailable with the reason, so the table says so instead of timing a failure."""
    if command.unavailable:
        return
    try:
        _, code, out = run_once(command.argv, command.env, capture=True)
    except OSError as exc:
        command.unavailable = f"cannot run: {exc}"
        return
    text = out.decode("utf-8", "replace")
    if code != 0 or (command.expect and command.expect not in text):
        tail = " ".join(text.split())[-160:]
        command.unavailable = f"failed (exit {code}): {tail}"


def measure(commands: Sequence[Command], runs: int, warmup: int = 1,
            progress: Callable[[str], None] = lambda _: None) -> None:
    """Check each command, warm it up (measuring its peak RSS), then time ``runs``
    interleaved rounds."""
    for command in commands:
        check(command)
    live = [c for c in commands if not c.unavailable]
    for _ in range(warmup):
        for command in live:
            rss = peak_rss_kb(command.argv, command.env)
            if rss is not None:
                command.rss_kb.append(rss)
    for round_ in range(runs):
        progress(f"round {round_ + 1}/{runs}")
        for command in live:
            elapsed, code, _ = run_once(command.argv, command.env)
            if code != 0:
                command.note = (command.note + "; " if command.note else "") + \
                    f"a timed run failed with exit {code}"
            command.times.append(elapsed)
