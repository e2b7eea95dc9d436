"""Resuming: what an earlier run's output file already holds, made whole again.

The rule (docs/batch.md, "Resume"): an id with an ``ok`` record is done and is not
sent again. Everything else is run again and its new record appended: ids with no
record, ids whose record is an error, and the torn last line a crash may leave. Before
appending, the file is compacted, atomically (a new file renamed over the old), when it
holds lines that must go: error records (their ids get a new record now), extra ``ok``
records of one id, and unreadable lines. So after any number of interrupted and resumed
runs the file holds exactly one record per input, as a single run would write.

Only a file llmcli batch wrote is ever rewritten: every line must be one of our
records, except a torn last line that starts like one. Anything else (notes, a
conversation, pretty-printed JSON) is refused untouched.

Each record carries the fingerprint of the request it answers (records.fingerprint).
:func:`check_unchanged` compares them with the input now: an input edited between the
runs (a line inserted at the top of a plain file shifts every line-number id) is
refused before anything is sent, so no result is ever filed under the wrong prompt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from .ids import IdSet
from .reader import Defaults, InputError, read_items
from .records import fingerprint, fingerprint_of, records_for, shape_of


@dataclass
class Existing:
    """What the output file held before this run, and what was done to it."""

    done: IdSet = field(default_factory=IdSet)   # ids with an ok record: skip them
    ok: int = 0             # ok records kept
    failed: int = 0         # error records dropped: those ids run again
    duplicates: int = 0     # extra ok records of an id, dropped
    torn: int = 0           # unreadable lines dropped (a torn last line)
    compacted: bool = False
    # "id\0fingerprint" of each ok record ("id\0" for one written before fingerprints)
    prints: IdSet = field(default_factory=IdSet)


def _records(path: str, fmt: str) -> Iterator[tuple[bytes, Optional[str], bool, Any]]:
    """(raw line, id or None if unreadable, ok, parsed record) for every line of the
    file; raises :class:`InputError` for a file that is not our output."""
    classify = records_for(fmt).classify
    torn: Optional[tuple[int, bytes]] = None
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if torn is not None:      # an unreadable line with more after it: not torn
                raise InputError(_not_ours(path, torn[0], None, fmt))
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                torn = (number, raw)
                continue
            found = classify(obj)
            if found is None:
                raise InputError(_not_ours(path, number, obj, fmt))
            yield raw, found[0], found[1], obj
    if torn is not None:
        if not torn[1].startswith(b'{"'):     # a torn record starts as every record does
            raise InputError(_not_ours(path, torn[0], None, fmt))
        yield torn[1], None, False, None


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
    for _, key, ok, obj in _records(path, fmt):
        if key is None:
            state.torn += 1
        elif not ok:
            state.failed += 1
        elif state.done.add(key):
            state.ok += 1
            state.prints.add(f"{key}\0{fingerprint_of(obj) or ''}")
        else:
            suspects.add(key)
            repeats += 1
            state.prints.add(f"{key}\0{fingerprint_of(obj) or ''}")
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
    kept = sum(1 for _, key, ok, _ in _records(path, fmt) if ok and key in suspects)
    return kept - sum(1 for _ in _kept(path, fmt, suspects, only_suspects=True))


def _kept(path: str, fmt: str, suspects: set[str], *,
          only_suspects: bool = False) -> Iterator[bytes]:
    """The lines compaction keeps: the first ok record of each id."""
    seen: set[str] = set()
    for raw, key, ok, _ in _records(path, fmt):
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


def check_unchanged(path: str, fmt: str, defaults: Defaults, state: Existing,
                    name: str) -> None:
    """Refuse to resume when an item that has an ``ok`` record now asks something
    else than the request that record answers (the input or the flags changed)."""
    if not state.ok:
        return
    changed, first = 0, None
    for item in read_items(path, fmt, defaults):
        if item.id not in state.done:
            continue
        now = fingerprint(item.body) if item.body is not None else "invalid"
        if f"{item.id}\0{now}" in state.prints or f"{item.id}\0" in state.prints:
            continue
        changed += 1
        first = first or item
    if changed and first is not None:
        raise InputError(
            f"{name} changed since the run that wrote this output: {changed} item(s) "
            f"with a record there now ask for something else (the first: id "
            f"{first.id!r}, line {first.line}), so their records would be wrong; nothing "
            "was sent. Resume with the same input and request flags (-m, -s, --param, "
            "...), or start over with --force")
