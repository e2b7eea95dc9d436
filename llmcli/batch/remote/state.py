"""The job state file: which parts exist, what each holds, where each is remotely.

Written beside OUT as ``OUT.remote.json``, atomically (a temporary file, fsync, rename,
fsync of the folder) before every step that creates remote state or costs money, so a
crash leaves the old state or the new one, never half of one. A part holds the input
items whose line numbers fall in its ``ranges`` (closed intervals) and that were not
done when it was made; it keeps them until it is merged into OUT.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..reader import InputError

VERSION = 1
SUFFIX = ".remote.json"
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class Part:
    """One uploaded file and its batch. ``stage`` is how far llmcli got with it:
    ``planned`` (state saved, upload next), ``uploaded`` (file id known, create next),
    ``creating`` (the create request may have been sent), ``submitted`` (batch id known),
    ``merged`` (its records are in OUT), ``void`` (given up before any batch existed:
its items go out in a new part)."""

    number: int
    ranges: list[list[int]]
    lines: int
    bytes: int
    offset: int = 0                        # byte offset of its first line in the input
    stage: str = "planned"
    file_id: Optional[str] = None
    batch_id: Optional[str] = None
    status: Optional[str] = None          # the batch's last known remote status
    counts: dict[str, int] = field(default_factory=dict)
    output_file_id: Optional[str] = None
    error_file_id: Optional[str] = None
    errors: Optional[dict[str, Any]] = None   # the batch's own errors (validation failure)
    seconds: int = 0                          # from the batch's creation to its end
    creating_at: Optional[float] = None       # wall time just before the create request

    @property
    def live(self) -> bool:
        """Whether the part still holds its items (not merged into OUT yet)."""
        return self.stage not in ("merged", "void")

    @property
    def finished(self) -> bool:
        """Whether its batch has ended remotely."""
        return self.status in TERMINAL

    def update(self, batch: dict[str, Any]) -> None:
        """Keep what a batch object says about this part; liberal in what it reads."""
        status = batch.get("status")
        self.status = status if isinstance(status, str) else self.status
        counts = batch.get("request_counts")
        if isinstance(counts, dict):
            self.counts = dict(self.counts, **{k: v for k, v in counts.items()
                                               if isinstance(v, int)})
        for name in ("output_file_id", "error_file_id"):
            if isinstance(batch.get(name), str) and batch.get(name):
                setattr(self, name, batch[name])
        if isinstance(batch.get("errors"), dict):
            self.errors = batch["errors"]
        start, end = batch.get("created_at"), _ended_at(batch)
        if isinstance(start, (int, float)) and isinstance(end, (int, float)):
            self.seconds = int(max(end - start, 0))

    def holds(self, line: int) -> bool:
        """Whether input line ``line`` is within this part's ranges."""
        ranges = self.ranges
        if len(ranges) == 1:
            return ranges[0][0] <= line <= ranges[0][1]
        i = bisect.bisect_right(self.ranges, [line, float("inf")]) - 1
        return i >= 0 and self.ranges[i][0] <= line <= self.ranges[i][1]


@dataclass
class JobState:
    """Everything needed to resume a remote job."""

    job_id: str
    input: str
    output_format: str
    endpoint: str
    completion_window: str
    created_at: float
    parts: list[Part] = field(default_factory=list)
    version: int = VERSION

    @classmethod
    def new(cls, input: str, output_format: str, endpoint: str, window: str,
            now: Optional[float] = None) -> "JobState":
        """A fresh job with a random id."""
        return cls(job_id="llmcli_" + os.urandom(8).hex(), input=os.path.abspath(input),
                   output_format=output_format, endpoint=endpoint,
                   completion_window=window, created_at=now or time.time())

    def next_number(self) -> int:
        """Part numbers are never reused: a late batch of a lost part stays traceable."""
        return max((p.number for p in self.parts), default=0) + 1

    def live_parts(self) -> list[Part]:
        """Parts that still hold their items, in order."""
        return [p for p in self.parts if p.live]

    def held(self, line: int) -> bool:
        """Whether a live part holds input line ``line``."""
        return any(p.holds(line) for p in self.parts if p.live)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (servers send odd shapes)."""
    return value if isinstance(value, dict) else {}


def _ended_at(batch: dict[str, Any]) -> Any:
    for name in ("completed_at", "failed_at", "expired_at", "cancelled_at"):
        if batch.get(name):
            return batch[name]
    return None


def path_for(output: str) -> str:
    """Where the state of the job writing ``output`` lives."""
    return output + SUFFIX


def load(path: str) -> Optional[JobState]:
    """The state saved at ``path``, or ``None`` when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the remote job state {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise InputError(f"{path} is not a remote job state this llmcli can read")
    problem = _problem(data)
    if problem:   # a file edited by hand: one line that says where, not a crash later on
        raise InputError(f"{path} is not a remote job state this llmcli can read: {problem}")
    parts = [Part(**p) for p in data.pop("parts")]
    return JobState(parts=parts, **data)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_ranges(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(r, list) and len(r) == 2 and all(_is_int(x) for x in r) and r[0] <= r[1]
        for r in v)


def _opt(check: Any) -> Any:
    return lambda v: v is None or check(v)


_str = lambda v: isinstance(v, str)   # noqa: E731
_JOB_FIELDS = {"job_id": _str, "input": _str, "output_format": _str, "endpoint": _str,
               "completion_window": _str, "created_at": _is_num, "version": _is_int,
               "parts": lambda v: isinstance(v, list) and all(isinstance(p, dict) for p in v)}
_PART_FIELDS = {"number": _is_int, "ranges": _is_ranges, "lines": _is_int, "bytes": _is_int,
                "offset": _is_int,
                "stage": lambda v: v in ("planned", "uploaded", "creating", "submitted",
                                         "merged", "void"),
                "file_id": _opt(_str), "batch_id": _opt(_str), "status": _opt(_str),
                "counts": lambda v: isinstance(v, dict) and all(_is_int(n) for n in v.values()),
                "output_file_id": _opt(_str), "error_file_id": _opt(_str),
                "errors": _opt(lambda v: isinstance(v, dict)), "seconds": _is_int,
                "creating_at": _opt(_is_num)}
_PART_REQUIRED = ("number", "ranges", "lines", "bytes")


def _problem(data: dict[str, Any]) -> Optional[str]:
    """What is wrong with a loaded state (a field missing, unknown or of the wrong
    type), or None when every field is as :func:`save` writes it."""
    bad = _bad_fields(data, _JOB_FIELDS, tuple(_JOB_FIELDS))
    if bad:
        return bad
    for i, part in enumerate(data["parts"]):
        bad = _bad_fields(part, _PART_FIELDS, _PART_REQUIRED)
        if bad:
            return f"parts[{i}]: {bad}"
    numbers = [p["number"] for p in data["parts"]]
    return "two parts have one number" if len(set(numbers)) != len(numbers) else None


def _bad_fields(obj: dict[str, Any], checks: dict[str, Any], required: tuple[str, ...]) -> str:
    missing = [k for k in required if k not in obj]
    if missing:
        return f"{missing[0]} is missing"
    for key, value in obj.items():
        if key not in checks:
            return f"unknown field {key}"
        if not checks[key](value):
            return f"{key} is {json.dumps(value)[:40]}"
    return ""


def save(state: JobState, path: str) -> None:
    """Write ``state`` atomically and durably: temp file, fsync, rename, fsync folder."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    data = json.dumps(asdict(state), indent=1).encode("utf-8") + b"\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (a power cut could otherwise undo it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def to_dict(state: JobState) -> dict[str, Any]:
    """The state as plain data (for ``--status``)."""
    return asdict(state)
