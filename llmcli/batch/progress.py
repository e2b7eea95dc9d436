"""Progress and summary as text and data; the CLI decides where (and whether) they go."""

from __future__ import annotations

from typing import Any, Optional

from .run_state import Outcome, Stats

BAR_WIDTH = 24


def _count(n: float) -> str:
    """1234 -> 1234, 123456 -> 123k, 12345678 -> 12.3M."""
    if n >= 10_000_000:
        return f"{n / 1e6:.0f}M"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 100_000:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


def _clock(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta(stats: Stats) -> Optional[float]:
    """Seconds left at the rate so far, or ``None`` before there is a rate."""
    rate = stats.rate
    return (stats.total - stats.done) / rate if rate > 0 else None


def status_text(stats: Stats) -> str:
    """The counters after the bar: ok, failed, retries, rate, tokens, ETA."""
    left = eta(stats)
    tokens = stats.prompt_tokens + stats.completion_tokens
    spend = f"${stats.cost:.4f}  " if stats.cost else ""   # nothing priced: no figure
    return (f"ok {stats.ok}  failed {stats.failed}  retries {stats.retries}  "
            f"{stats.rate:.0f} req/s  {_count(tokens)} tok  {spend}"
            f"ETA {_clock(left) if left is not None else '?'}")


MIN_BAR = 10
# Fields a narrow terminal drops, first dropped first ("bar" shrinks before it goes).
# The count and the ETA always stay: they are what a person glances at.
DROP_ORDER = ("tok", "retries", "rate", "ok", "bar", "failed")


def progress_bar(stats: Stats, width: Optional[int] = None) -> str:
    """One terminal line: ``[#####......] 1234/10000  ok ... ETA 0:21``, at most
    ``width`` columns: fields are dropped by :data:`DROP_ORDER` and the bar shrinks,
    so the ETA is never cut off."""
    fields = _bar_fields(stats)
    bar = BAR_WIDTH
    line = _layout(stats, fields, bar)
    if width is None:
        return line
    for name in DROP_ORDER:
        if len(line) <= width:
            break
        if name == "bar":
            bar = max(MIN_BAR, bar - (len(line) - width))
            line = _layout(stats, fields, bar)
            if len(line) <= width:
                break
        fields.pop(name, None)
        line = _layout(stats, fields, bar)
    return line


def _bar_fields(stats: Stats) -> dict[str, str]:
    left = eta(stats)
    tokens = stats.prompt_tokens + stats.completion_tokens
    return {"bar": "", "count": f"{stats.done}/{stats.total}", "ok": f"ok {stats.ok}",
            "failed": f"failed {stats.failed}", "retries": f"retries {stats.retries}",
            "rate": f"{stats.rate:.0f} req/s", "tok": f"{_count(tokens)} tok",
            "eta": f"ETA {_clock(left) if left is not None else '?'}"}


def _layout(stats: Stats, fields: dict[str, str], bar_width: int) -> str:
    parts = []
    for name, text in fields.items():
        if name == "bar":
            total = max(stats.total, 1)
            filled = int(bar_width * min(stats.done, total) / total)
            text = "[" + "#" * filled + "." * (bar_width - filled) + "]"
        parts.append(text)
    head, rest = (parts[0] + " " + parts[1], parts[2:]) if "bar" in fields else (parts[0], parts[1:])
    return "  ".join([head, *rest])


def status_line(stats: Stats) -> str:
    """One log line for CI: ``batch: 1234/10000 (12%) ok ...``."""
    percent = 100 * stats.done / stats.total if stats.total else 100
    return f"batch: {stats.done}/{stats.total} ({percent:.0f}%) {status_text(stats)}"


def summary(outcome: Outcome, output: Optional[str]) -> dict[str, Any]:
    """The summary as the stable object `--summary-json` writes (docs/batch.md)."""
    s = outcome.stats
    return {
        "inputs": s.total + s.skipped, "skipped": s.skipped, "run": s.total,
        "ok": s.ok, "failed": s.failed, "invalid_input": s.invalid,
        "not_run": outcome.not_run, "retries": s.retries, "rate_limited": s.rate_limited,
        "slowdowns": s.slowdowns, "errors": dict(sorted(s.errors.items())),
        "tokens": {"prompt": s.prompt_tokens, "completion": s.completion_tokens,
                   "total": s.prompt_tokens + s.completion_tokens},
        "cost": {"usd": round(s.cost, 6), "unpriced": s.unpriced},
        "wall_seconds": round(s.elapsed, 3), "items_per_second": round(s.rate, 1),
        "stopped": outcome.stopped, "output": output or "-",
        "lost_in_flight": s.lost_in_flight,
    }


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The summary for people: a few lines for stderr."""
    head = f"batch: {data['ok']} ok, {data['failed']} failed"
    if data["invalid_input"]:
        head += f" ({data['invalid_input']} bad input lines)"
    if data["not_run"]:
        head += f", {data['not_run']} not run"
    head += f" of {data['run']}"
    if data["skipped"]:
        head += f" ({data['skipped']} more were done already)"
    lines = [head]
    if data.get("lost_in_flight"):
        lines.append(f"the earlier run stopped with {data['lost_in_flight']} request(s) in "
                     "flight: they were paid for but their results were lost, so they "
                     "ran again")
    if data["errors"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in data["errors"].items()))
    tokens = data["tokens"]
    lines.append(f"retries {data['retries']} (429s {data['rate_limited']}); tokens "
                 f"{tokens['prompt']:,} in, {tokens['completion']:,} out; "
                 f"{data['wall_seconds']:.1f}s, {data['items_per_second']:.0f} items/s")
    cost = data["cost"]
    lines.append(f"cost ${cost['usd']:.4f}" + (f" ({cost['unpriced']} replies of models with no "
                                                "known price are not in it)" if cost["unpriced"] else ""))
    return lines
