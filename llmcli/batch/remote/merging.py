"""Collecting a remote job's ended parts: each part's result files -> one record per
item, written in input order (the hot loop of a merge), and the job's progress counts
that the polls and merges keep. :class:`~llmcli.batch.remote.runner.Runner` drives
these; they hold no job state of their own."""

from __future__ import annotations

import gc
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..ids import IdSet
from ..reader import Item
from . import results
from .state import Part

WRITE_CHUNK = 512         # records per write while merging
KILL_ENV = "LLMCLI_REMOTE_KILL_AT"   # tests: SIGKILL the process at a named step


@dataclass
class Progress:
    """The job as the last polls saw it."""

    parts: int = 0
    merged: int = 0
    total: int = 0          # requests in live batches
    completed: int = 0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    ok_records: int = 0
    failed_records: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def kill_point(step: str) -> None:
    """Die here, as ``kill -9`` would, when the test hook names this step."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def tally(progress: Progress, parts: list[Part], live: list[Part]) -> None:
    """Count the job's parts and its ``live`` parts' batch counts into ``progress``."""
    p = progress
    p.parts = sum(1 for part in parts if part.stage != "void")
    p.merged = sum(1 for part in parts if part.stage == "merged")
    p.total = sum(part.counts.get("total") or part.lines for part in live)
    p.completed = sum(part.counts.get("completed") or 0 for part in live)
    p.failed = sum(part.counts.get("failed") or 0 for part in live)
    p.statuses = {}
    for part in live:
        p.statuses[part.status or "?"] = p.statuses.get(part.status or "?", 0) + 1


def count_merged(progress: Progress, stats: results.MergeStats) -> None:
    """Add what merging one part wrote to the job's record counts."""
    progress.ok_records += stats.ok
    progress.failed_records += stats.failed
    for kind, n in stats.errors.items():
        progress.errors[kind] = progress.errors.get(kind, 0) + n


def write_part(part: Part, files: list[str], *, source: str, fmt: str, done: IdSet,
               records: Any, endpoint: str, write: Callable[[bytes], None],
               schemas: Optional[dict[int, dict[str, Any]]] = None,
               prices: Any = None) -> results.MergeStats:
    """Write one record per item of the ended ``part`` (its items read from the input
    file ``source`` in format ``fmt``, its results from ``files`` on disk) through
    ``write``, skipping the ids in ``done``; returns what was written. ``schemas``:
    the request bodies, by input line, whose replies must match a JSON schema."""
    # Each result line makes a few dozen short-lived containers and no cycles: the
    # cyclic collector would run every ~700 of them for nothing (a third of the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _write_records(part, files, source, fmt, done, records, endpoint, write,
                              schemas or {}, prices)
    finally:
        if enabled:
            gc.enable()


def _write_records(part: Part, files: list[str], source: str, fmt: str, done_ids: IdSet,
                   records: Any, endpoint: str, write: Callable[[bytes], None],
                   schemas: dict[int, dict[str, Any]], prices: Any) -> results.MergeStats:
    batch = {"status": part.status, "errors": part.errors}
    missing = results.missing_reason(batch)
    refused = results.validation_errors(batch)
    found = results.ResultStream(files)
    convert = results.Converter(records, endpoint, part.seconds * 1000, prices)
    stats = results.MergeStats()
    done = done_ids if len(done_ids) else None
    chunk: list[bytes] = []
    item = Item(0, 0, "", None)     # one Item, refilled per line: the hot loop
    for position, (line, key) in enumerate(results.members(source, fmt, part), 1):
        if done is not None and key in done:
            continue
        why = ("invalid_request", refused[position]) if position in refused else missing
        item.line, item.id = line, key
        item.body = schemas.get(line) if schemas else None
        chunk.append(convert.record(item, found.take(key), why, stats))
        if position == 1:
            write(chunk.pop())
            kill_point("download")
        elif len(chunk) >= WRITE_CHUNK:     # whole lines, many per write
            write(b"".join(chunk))
            chunk.clear()
    if chunk:
        write(b"".join(chunk))
    return stats
