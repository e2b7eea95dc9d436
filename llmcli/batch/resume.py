"""Resuming: what an earlier run's output file already holds, made whole again.

The rule (docs/batch.md, "Resume"): an id with an ``ok`` record is done and is not
sent again. Everything else is run again and its new record appended: ids with no
record, ids whose record is an error, and the torn last line a crash may leave. Before
appending, the file is compacted, atomically (a new file renamed over the old), when it
holds lines that must go: error records (their ids get a new record now), extra ``ok``
records of one id, and unreadable lines. So after any number of interrupted and resumed
runs the file holds exactly one record per input, as a single run would write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from .ids import IdSet
from .reader import InputError
from .records import records_for, shape_of


@dataclass
class Existing:
    """What the output file held before this run, and what was done to it."""

    done: IdSet = field(default_factory=IdSet)   # ids with an ok record: skip them
    ok: int = 0             # ok records kept
    failed: int = 0         # error records dropped: those ids run again
    duplicates: int = 0     # extra ok records of an id, dropped
    torn: int = 0           # unreadable lines dropped (a torn last line)
    compacted: bool = False


def _records(path: str, fmt: str) -> Iterator[tuple[bytes, Optional[str], bool]]:
    """(raw line, id or None if unreadable, ok) for every line of the file."""
    classify = records_for(fmt).classify
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                yield raw, None, False
                continue
            found = classify(obj)
            if found is None:
                raise InputError(_not_ours(path, number, obj, fmt))
            yield raw, found[0], found[1]


def _not_ours(path: str, number: int, obj: Any, fmt: str) -> str:
    other = shape_of(obj)
    if other:
        return (f"{path} holds {other} records (line {number}); resume it with "
                f"--output-format {other}")
    return (f"{path} line {number} is not a batch record: refusing to resume into a file "
            "that llmcli batch did not write")


def load(path: str, fmt: str) -> Existing:
    """Read ``path`` (if it exists), compact it when needed, and say what is done."""
    state = Existing()
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return state
    suspects: set[str] = set()   # ids whose hash was already in: duplicates, or hash twins
    repeats = 0
    for _, key, ok in _records(path, fmt):
        if key is None:
            state.torn += 1
        elif not ok:
            state.failed += 1
        elif state.done.add(key):
            state.ok += 1
        else:
            suspects.add(key)
            repeats += 1
    if suspects:
        state.duplicates = _count_duplicates(path, fmt, suspects)
        state.ok += repeats - state.duplicates
    if state.failed or state.duplicates or state.torn:
        _compact(path, fmt, suspects)
        state.compacted = True
    else:
        _end_with_newline(path)
    return state


def _count_duplicates(path: str, fmt: str, suspects: set[str]) -> int:
    """How many ok lines repeat an id already recorded ok, compared exactly (the hash
    set only says "maybe")."""
    kept = sum(1 for _, key, ok in _records(path, fmt) if ok and key in suspects)
    return kept - sum(1 for _ in _kept(path, fmt, suspects, only_suspects=True))


def _kept(path: str, fmt: str, suspects: set[str], *,
          only_suspects: bool = False) -> Iterator[bytes]:
    """The lines compaction keeps: the first ok record of each id."""
    seen: set[str] = set()
    for raw, key, ok in _records(path, fmt):
        if not ok or key is None:
            continue
        if key in suspects:
            if key in seen:
                continue
            seen.add(key)
        elif only_suspects:
            continue
        yield raw if raw.endswith(b"\n") else raw + b"\n"


def _compact(path: str, fmt: str, suspects: set[str]) -> None:
    """Rewrite ``path`` with only the kept lines: a new file renamed over the old, so
    a crash leaves either the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            for raw in _kept(path, fmt, suspects):
                out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _end_with_newline(path: str) -> None:
    """A crash after a record's last byte but before its newline leaves a whole
    record without its line end: finish the line so the next record starts fresh."""
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            f.write(b"\n")
