"""A remote job from input to OUT: plan parts, upload, create, wait, download, merge.

Exactly once (docs/batch.md, "Remote"): the state file is saved before each step that
creates remote state or costs money, and every batch is tagged with ``metadata``
``{"llmcli_job": <job id>, "llmcli_part": "<n>"}``. On resume a part that may have
reached ``POST /batches`` (stage ``creating``) is looked up by that tag before anything
else is done: found, it is adopted; not found, no batch holds its items and they go out
in a new part. A part that never got that far is given up (``void``): nothing of it
can run. So however the previous run died, no item is ever in two batches.

Records are written in part order (input order) through the local batch's
:class:`~llmcli.batch.writer.RecordWriter`; a part is ``merged`` only after its last
record is written, so a kill while merging is repaired by resume's compaction and a
second merge of that part that skips the ids already ``ok``.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ...core.errors import APIError
from .. import reader, resume
from ..reader import Defaults, InputError, Item
from ..records import records_for
from ..run_state import schema_of
from ..writer import FdSink, RecordWriter
from . import lookup, results, state as st
from .merging import KILL_ENV, Progress, count_merged, kill_point, tally, write_part
from .parts import (CHAT, MAX_BYTES, MAX_LINES, MESSAGES, Splitter, endpoint_of_input,
                    urls_for)
from .state import JobState, Part

FIRST_POLL = 1.0          # seconds before the first poll; doubles up to poll_interval
CREATE_TRIES = 3
# Progress (what on_progress receives) and the kill hook stay importable from here.
__all__ = ["CREATE_TRIES", "FIRST_POLL", "KILL_ENV", "Progress", "RemoteSpec", "Runner", "WaitExpired",
           "kill_point", "reattach_ids", "st_ids"]


@dataclass
class RemoteSpec:
    """What the user asked for."""

    input: str
    output: str
    input_format: str = "auto"
    output_format: str = "jsonl"
    defaults: Defaults = field(default_factory=Defaults)
    endpoint: Optional[str] = None
    window: str = "24h"
    max_lines: int = MAX_LINES
    max_bytes: int = MAX_BYTES
    poll_interval: float = 60.0
    resume: bool = False
    force: bool = False
    max_wait: Optional[float] = None     # --max-time: the whole command waits no longer
    prices: Any = None                   # a usage.prices.PriceTable: records get `cost`


class WaitExpired(Exception):
    """``max_wait`` passed while batches were still running; they keep running."""


class Runner:
    """One remote job. ``prepare`` first; then ``submit``, ``wait``, ``status``, ``cancel``."""

    def __init__(self, spec: RemoteSpec, api: Any, *, secrets: list[str] = (),  # type: ignore[assignment]
                 sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.time,
                 on_progress: Optional[Callable[[Progress], None]] = None,
                 on_note: Optional[Callable[[str], None]] = None) -> None:
        self.spec, self.api, self.secrets = spec, api, list(secrets)
        self.sleep, self.wall = sleep, wall
        self.started = wall()
        self.on_progress, self.on_note = on_progress, on_note or (lambda text: None)
        self.state_path = st.path_for(spec.output)
        self.state: Optional[JobState] = None
        self.existing = resume.Existing()
        self.format = spec.input_format
        self.endpoint = spec.endpoint or CHAT
        self.progress = Progress()
        self.merged_now: list[Part] = []   # their failed items are sent again next run, not now
        self._writer: Optional[RecordWriter] = None
        self._sink: Optional[FdSink] = None

    # -- preparing -------------------------------------------------------------
    def prepare(self, *, read_only: bool = False) -> None:
        """Check the paths, load the state and OUT, and pre-pass the input."""
        spec = self.spec
        if not os.path.isfile(spec.input):
            raise InputError(f"cannot read {spec.input}: no such file")
        saved = st.load(self.state_path)
        if saved is not None and (spec.resume or read_only):
            self._same_engine(saved)
        if read_only:
            if saved is None:
                raise InputError(f"no remote job for {spec.output}: {self.state_path} "
                                 "does not exist")
            self.state = saved
            return
        has_out = os.path.exists(spec.output) and os.path.getsize(spec.output) > 0
        if (has_out or saved) and not (spec.resume or spec.force):
            raise InputError(f"{spec.output} exists (or its remote job does): pass --resume "
                             "to finish it, or --force to start over")
        if saved is not None and saved.input != os.path.abspath(spec.input):
            if spec.resume:
                raise InputError(f"the remote job of {spec.output} ran {saved.input}, not "
                                 f"{spec.input}: resume it with the same input")
        if spec.resume and saved is not None and saved.output_format != spec.output_format:
            raise InputError(f"the remote job of {spec.output} writes --output-format "
                             f"{saved.output_format}: resume it with that format")
        if spec.resume:
            self.existing = resume.load(spec.output, spec.output_format) if has_out else self.existing
            self.state = saved
        elif saved is not None and any(p.live for p in saved.parts):
            self.on_note(f"--force: the earlier job's batches ({', '.join(st_ids(saved))}) "
                         "keep running remotely; their results will not be collected")
        scan = reader.scan(spec.input, spec.input_format, self.existing.done)
        self.format = scan.format
        self.endpoint = self._endpoint()
        if self.state is None:
            self.state = JobState.new(spec.input, spec.output_format, self.endpoint, spec.window)

    def _same_engine(self, saved: JobState) -> None:
        """A job's batches live on the engine that made them: another one (a resume
        with another --api) would be asked for batch ids it never had."""
        if (saved.endpoint == MESSAGES) != (self.spec.endpoint == MESSAGES):
            engine = "Anthropic Message Batches" if saved.endpoint == MESSAGES \
                else "the OpenAI Batch API"
            raise InputError(f"the remote job of {self.spec.output} runs on {engine} "
                             f"({saved.endpoint}): use the same --api (or profile) as it did")

    def _endpoint(self) -> str:
        if self.state is not None:
            return self.state.endpoint
        if self.spec.endpoint:
            return self.spec.endpoint
        if self.format == "openai-batch":
            first = next(reader.lines(self.spec.input), (0, None))[1]
            return endpoint_of_input(first) or CHAT
        return CHAT

    def _items(self) -> Any:
        return reader.read_items(self.spec.input, self.format, self.spec.defaults,
                                 urls=urls_for(self.endpoint))

    def _schema_bodies(self, part: Part) -> Optional[dict[int, dict[str, Any]]]:
        """The requests of ``part`` that carry a JSON schema (--schema or a line's
        own), by input line: their replies are checked as local batch checks them.
        ``None``, without reading the input again, when nothing can carry one."""
        if "response_format" not in self.spec.defaults.base() and not _mentions_schema(
                self.spec.input):
            return None
        found = {item.line: item.body for item in self._items()
                 if item.body and part.holds(item.line) and schema_of(item.body) is not None}
        return found or None

    def _save(self) -> None:
        assert self.state is not None
        st.save(self.state, self.state_path)

    # -- output ----------------------------------------------------------------
    def open_output(self) -> None:
        """Open OUT for records: appended to on resume, created afresh otherwise."""
        self._sink = FdSink.open(self.spec.output, append=self.spec.resume)
        self._writer = RecordWriter(self._sink, ordered=False)
        self._records = records_for(self.spec.output_format, self.secrets)

    def close(self) -> None:
        """Flush and close OUT."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _write(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.put(0, data)

    # -- planning and submitting ---------------------------------------------
    def plan(self) -> list[dict[str, Any]]:
        """The parts a submission would create, as rows (``--dry-run``); sends nothing."""
        splitter = Splitter(self.endpoint, self.spec.max_lines, self.spec.max_bytes, write=False)
        done = self.existing.done
        rows = []
        for number, part in enumerate(splitter.parts(self._items(), lambda i: i.id not in done,
                                                     lambda i: None), 1):
            rows.append(dict(part=number, **part.row()))
        return rows

    def recover(self) -> None:
        """Settle parts the previous run left half-way (see the module docstring)."""
        assert self.state is not None
        self._remove_leftovers()
        unsure = [p for p in self.state.parts if p.stage == "creating"]
        found = self._find_batches() if unsure else {}
        for part in self.state.parts:
            if part.stage in ("planned", "uploaded"):
                self._void(part, "it was never submitted")
            elif part.stage == "creating":
                batch = found.get(part.number)
                if batch is None:
                    self._void(part, "no batch was created for it")
                else:
                    self._adopt(part, batch)
                    self.on_note(f"part {part.number}: found batch {part.batch_id}, "
                                 "created before the last run stopped")
        self._save()

    def _folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.spec.output))

    def _temp_prefix(self) -> str:
        """Temporary files (request parts, downloads) beside OUT are named after the
        job, so that a resume can remove those a killed run left behind."""
        assert self.state is not None
        return f".{self.state.job_id}."

    def _remove_leftovers(self) -> None:
        prefix = self._temp_prefix()
        for name in os.listdir(self._folder()):
            if name.startswith(prefix):
                try:
                    os.unlink(os.path.join(self._folder(), name))
                except OSError:
                    pass

    def _void(self, part: Part, why: str) -> None:
        part.stage = "void"
        if part.file_id:
            self.api.delete_file(part.file_id)
        self.on_note(f"part {part.number}: {why}; its items go out again")

    def _find_batches(self) -> dict[int, dict[str, Any]]:
        assert self.state is not None
        return lookup.find(self.api, self.state)

    def submit(self) -> list[Part]:
        """Send every item that is not done and not held by a live part; returns the
        new parts. Bad input lines get their error records now."""
        assert self.state is not None
        done, state = self.existing.done, self.state
        held = [p for p in state.parts if p.live] + self.merged_now
        take = (lambda i: i.id not in done and not any(p.holds(i.line) for p in held))
        splitter = Splitter(self.endpoint, self.spec.max_lines, self.spec.max_bytes,
                            folder=self._folder(), prefix=self._temp_prefix())
        created = []
        for planned in splitter.parts(self._items(), take, self._bad_line):
            part = Part(number=state.next_number(), ranges=planned.ranges, lines=planned.lines,
                        bytes=planned.bytes, offset=planned.offset)
            state.parts.append(part)
            try:
                self._save()                       # before the upload: remote state next
                if self.api.uploads and planned.path:
                    self._upload(part, planned.path)
                    os.unlink(planned.path)
                self._create(part, part.file_id or planned.path)
            finally:
                if planned.path and os.path.exists(planned.path):
                    os.unlink(planned.path)
            created.append(part)
        return created

    def _bad_line(self, item: Item) -> None:
        self._write(self._records.error(item, None, 0, 0))
        self.progress.failed_records += 1
        self.progress.errors["invalid_input"] = self.progress.errors.get("invalid_input", 0) + 1

    def _upload(self, part: Part, path: Optional[str]) -> None:
        assert self.state is not None and path is not None
        if os.environ.get(KILL_ENV) == "upload":
            self.api.on_chunk = lambda n: kill_point("upload")
        name = f"{self.state.job_id}-part{part.number}.jsonl"
        part.file_id = str(self.api.upload(path, name)["id"])
        part.stage = "uploaded"
        self._save()
        kill_point("uploaded")

    def _create(self, part: Part, source: Optional[str]) -> None:
        """Create the part's batch from ``source`` (the uploaded file's id, or the
        request file itself for an API that takes requests inline)."""
        assert self.state is not None and source is not None
        part.stage, part.creating_at = "creating", self.wall()
        self._save()                               # before the request that costs money
        meta = {"llmcli_job": self.state.job_id, "llmcli_part": str(part.number)}
        for attempt in range(1, CREATE_TRIES + 1):
            try:
                batch = self.api.create(source, self.endpoint, self.state.completion_window,
                                        meta)
                break
            except APIError as exc:
                # The request may have been carried out all the same: look before retrying.
                batch = self._find_batches().get(part.number)
                if batch is not None:
                    break
                if not exc.retryable or attempt == CREATE_TRIES:
                    raise
                self.sleep(min(2.0 ** attempt, self.spec.poll_interval))
        kill_point("created")
        self._adopt(part, batch)
        self._save()

    @staticmethod
    def _adopt(part: Part, batch: dict[str, Any]) -> None:
        part.batch_id = str(batch.get("id"))
        part.stage = "submitted"
        part.update(batch)

    # -- waiting and merging -------------------------------------------------
    def wait(self, *, block: bool = True) -> None:
        """Poll the live parts, merging each (in order) once its batch has ended.
        ``block=False`` polls once and merges what has ended."""
        interval = min(FIRST_POLL, self.spec.poll_interval)
        while True:
            self.poll()
            kill_point("polling")
            self._merge_ready()
            if not self._live() or not block:
                return
            left = self._time_left()
            if left is not None and left <= 0:
                raise WaitExpired()
            self.sleep(interval if left is None else min(interval, left))
            interval = min(interval * 2, self.spec.poll_interval)

    def _time_left(self) -> Optional[float]:
        """Seconds of ``max_wait`` left since the runner started, or ``None``."""
        if not self.spec.max_wait:
            return None
        return self.spec.max_wait - (self.wall() - self.started)

    def _live(self) -> list[Part]:
        assert self.state is not None
        return [p for p in self.state.parts if p.live and p.batch_id]

    def poll(self) -> Progress:
        """Retrieve every live batch that has not ended; returns the totals."""
        changed = False
        for part in self._live():
            if not part.finished:
                before = part.status
                part.update(self.api.retrieve(part.batch_id))
                changed |= part.status != before
        if changed:
            self._save()
        self._tally()
        return self.progress

    def _tally(self) -> None:
        assert self.state is not None
        live = self._live()
        tally(self.progress, self.state.parts, live)
        if self.on_progress is not None and live:
            self.on_progress(self.progress)

    def _merge_ready(self) -> None:
        """Merge ended parts in part order: a part waits for the ones before it."""
        for part in self._live():
            if not part.finished:
                return
            self.merge(part)

    def merge(self, part: Part) -> results.MergeStats:
        """Download an ended part's files and write one record per item it holds."""
        folder = self._folder()
        files = []
        try:
            for file_id in (part.output_file_id, part.error_file_id):
                if file_id:
                    fd, path = tempfile.mkstemp(prefix=self._temp_prefix(), dir=folder)
                    os.close(fd)
                    files.append(path)
                    self.api.download(file_id, path)
            stats = write_part(part, files, source=self.spec.input, fmt=self.format,
                               done=self.existing.done, records=self._records,
                               endpoint=self.endpoint, write=self._write,
                               prices=self.spec.prices,
                               schemas=self._schema_bodies(part))
            self.merged_now.append(part)
            count_merged(self.progress, stats)
        finally:
            for path in files:
                os.unlink(path)
        part.stage = "merged"
        self._save()
        self._tally()
        return stats

    # -- status and cancel -----------------------------------------------------
    def cancel(self) -> list[Part]:
        """Ask the server to cancel every live batch that has not ended."""
        cancelled = []
        for part in self._live():
            if not part.finished:
                part.update(self.api.cancel(part.batch_id))
                cancelled.append(part)
        self._save()
        return cancelled

    def unfinished(self) -> int:
        """Items held by live parts (not merged yet)."""
        assert self.state is not None
        return sum(p.lines for p in self.state.parts if p.live)


def st_ids(state: JobState) -> list[str]:
    """Batch ids of the live parts (for messages)."""
    return reattach_ids(state) or ["none created"]


def reattach_ids(state: JobState) -> list[str]:
    """Batch ids of the live parts."""
    return [p.batch_id for p in state.parts if p.live and p.batch_id]


def _mentions_schema(path: str) -> bool:
    """Whether the input's bytes name a schema at all (a line's `schema`, or a Batch API
    body's `response_format`): a fast scan that spares a plain input the full parse."""
    tail = b""
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            window = tail + chunk
            if b'"schema"' in window or b'"response_format"' in window:
                return True
            tail = chunk[-32:]
    return False
