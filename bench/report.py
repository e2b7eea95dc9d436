"""Markdown for the benchmark: one table per section, then the targets of issue 5."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from bench.timing import Command, Summary


@dataclass
class Section:
    """A table: its commands, and a ratio column against one of them."""

    title: str
    commands: list[Command]
    ratio_header: str
    # (this row, the reference row) -> the ratio shown; both summaries exist
    ratio: Callable[[Summary, Summary], float]
    reference: str                      # label of the row the ratio is taken against
    notes: list[str] = field(default_factory=list)

    def get(self, label: str) -> Optional[Summary]:
        for command in self.commands:
            if command.label == label:
                return command.summary()
        return None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def section_table(section: Section) -> str:
    ref = section.get(section.reference)
    lines = [f"### {section.title}", "",
             f"| command | median | min | max | peak RSS | {section.ratio_header} |",
             "|---|---:|---:|---:|---:|---:|"]
    for command in section.commands:
        row = command.summary()
        name = f"`{command.label}`"
        if row is None:
            lines.append(f"| {name} | {command.unavailable or 'not run'} | | | | |")
            continue
        rss = f"{row.rss_mb:,.0f} MB" if row.rss_mb is not None else ""
        ratio = f"{section.ratio(row, ref):.2f}×" if ref is not None else ""
        note = f" ({command.note})" if command.note else ""
        lines.append(f"| {name}{note} | {ms(row.median)} | {ms(row.low)} | {ms(row.high)} "
                     f"| {rss} | {ratio} |")
    runs = {c.summary().runs for c in section.commands if c.summary()}
    lines.append("")
    lines.append(f"{'/'.join(map(str, sorted(runs))) or 0} runs each, interleaved."
                 + "".join(f" {n}" for n in section.notes))
    return "\n".join(lines)


def inproc_table(rates: dict[str, list[float]], deltas: dict[str, int]) -> str:
    """Chunks/s of each in-process consumer: median [min-max], and llmcli's ratio."""
    def median(xs: Sequence[float]) -> float:
        ordered = sorted(xs)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    ours = median(rates["llmcli parser"])
    lines = ["### In-process parsing of the same 20,000-chunk reply", "",
             "| consumer | chunks/s median | min | max | llmcli parser ÷ this |",
             "|---|---:|---:|---:|---:|"]
    for name, values in rates.items():
        lines.append(f"| {name} | {median(values):,.0f} | {min(values):,.0f} | "
                     f"{max(values):,.0f} | {ours / median(values):.2f}× |")
    counts = set(deltas.values())
    lines += ["", f"{len(next(iter(rates.values())))} rounds, interleaved; every consumer saw "
              f"{'/'.join(f'{c:,}' for c in sorted(counts))} content deltas."]
    return "\n".join(lines)


def target_line(text: str, value: Optional[float], limit: Optional[float], *,
                at_least: bool = False, unit: str = "×") -> str:
    """``- MET``/``- MISSED`` with the measured figure, ``- n/a`` when not measured, and
    ``- for reference`` when there is no target (``limit`` None)."""
    if value is None:
        return f"- n/a: {text} (not measured in this run)"
    if limit is None:
        return f"- for reference, no target: {text}: {value:.2f}{unit}"
    ok = value >= limit if at_least else value <= limit
    sign = "≥" if at_least else "≤"
    return f"- {'MET' if ok else 'MISSED'}: {text}: {value:.2f}{unit} (target {sign} {limit:g}{unit})"
