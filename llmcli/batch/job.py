"""One `llmcli batch` run, from input to outcome: the pieces put together.

:meth:`Job.prepare` does everything that must happen before the first request: build
the client (a bad ``base_url`` fails here, before the output is touched), spool stdin
to a temporary file (so the input can be read twice in constant memory), read and
repair the output file for ``--resume``, and the pre-pass (format, duplicate ids,
counts). :meth:`Job.run` then opens the output and runs the engine.

The output file has one writer at a time: its lock (llmcli/core/filelock.py) is taken
before the file is looked at, and held until the job is done, so a second run on the
same ``-o FILE`` fails at once, before it sends anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Callable, Optional

from ..core.errors import APIError, FileWriteError
from ..core.filelock import FileLock, lockable
from ..core.options import ClientOptions
from ..core.retry import RetryPolicy
from . import reader, resume
from .engine import Engine, EngineOptions, Outcome, Stats, run_with_signals
from .reader import Defaults, InputError, Item
from .records import records_for
from .writer import FdSink, RecordWriter, StreamSink, stdout_sink

MIN_WINDOW = 256
WINDOW_PER_WORKER = 8


@dataclass
class JobSpec:
    """What the user asked for."""

    input: str                      # a path, or "-" for stdin
    output: Optional[str] = None    # a path, or None for stdout
    input_format: str = "auto"
    output_format: str = "jsonl"
    resume: bool = False
    force: bool = False
    ordered: bool = True
    defaults: Defaults = field(default_factory=Defaults)
    engine: EngineOptions = field(default_factory=EngineOptions)
    backend: str = "aiohttp"
    accounting: Any = None          # cost, --max-cost and the usage log (accounting.py)

    @property
    def window(self) -> int:
        """The reorder buffer's size, in records."""
        return max(MIN_WINDOW, WINDOW_PER_WORKER * self.engine.concurrency)


class Job:
    """Prepare, run, clean up. Use as a context manager (the stdin spool is removed)."""

    def __init__(self, spec: JobSpec, options: ClientOptions) -> None:
        self.spec, self.options = spec, options
        self.path = spec.input
        self.existing = resume.Existing()
        self.scan = reader.Scan(spec.input_format, 0, 0)
        self.client: Any = None
        self.lock: Optional[FileLock] = None
        self.writer: Optional[RecordWriter] = None
        self._spool: Optional[str] = None

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._spool and os.path.exists(self._spool):
            os.unlink(self._spool)
        if self.lock is not None:
            # Requests still in flight (cancelled after --grace) were paid for: their
            # count stays in the lock file for the next run to report.
            self.lock.release(in_flight=self.writer.in_flight if self.writer else 0)

    @property
    def lost_in_flight(self) -> int:
        """Requests an earlier run had sent without writing their records when it was
        killed or stopped: paid for, and run again by this job."""
        return self.lock.previous_in_flight if self.lock else 0

    def prepare(self, stdin: Optional[BinaryIO] = None) -> None:
        """Everything before the first request; raises :class:`InputError`, or
        :class:`~llmcli.core.errors.ConfigError` for settings no request could go out with."""
        spec = self.spec
        self.client = self._client()
        if spec.input == "-":
            self.path = self._spool = spool(stdin)
        elif os.path.isdir(spec.input):
            raise InputError(f"cannot read {spec.input}: it is a directory; INPUT is one "
                             "file of prompts (to run every file in it: cat DIR/*.txt | "
                             "llmcli batch -)")
        elif not os.path.isfile(spec.input):
            what = "not a regular file (use - and stdin)" if os.path.exists(spec.input) \
                else "no such file"
            raise InputError(f"cannot read {spec.input}: {what}")
        if spec.output:
            self._check_output()
            if spec.resume:
                self.existing = _load_existing(spec.output, spec.output_format)
        try:
            self.scan = reader.scan(self.path, spec.input_format, self.existing.done)
            if self.existing.ok:
                resume.check_unchanged(self.path, self.scan.format, spec.defaults,
                                       self.existing, spec.input)
        except OSError as exc:
            raise InputError(f"cannot read {spec.input}: {exc.strerror or exc}") from exc

    def _check_output(self) -> None:
        spec = self.spec
        out = spec.output
        assert out is not None
        folder = os.path.dirname(os.path.abspath(out))
        if os.path.isdir(out) or not os.access(folder, os.W_OK):
            raise InputError(f"cannot write {out}: not a file in a writable folder")
        if spec.input != "-" and os.path.exists(out) and os.path.samefile(out, spec.input):
            raise InputError(f"-o {out} is the input file")
        if lockable(out):     # before looking at what is in it: one writer at a time
            self.lock = FileLock(out).acquire()
        if os.path.exists(out) and os.path.getsize(out) and not (spec.resume or spec.force):
            raise InputError(f"{out} exists: pass --resume to finish it, or --force to "
                             "overwrite it")

    @property
    def foreign(self) -> int:
        """Ok records in the output whose ids are not in this input."""
        return max(self.existing.ok - self.scan.skipped, 0)

    def run(self, *, stdout: Optional[IO[Any]] = None,
            on_progress: Optional[Callable[[Stats], None]] = None,
            on_new_error: Optional[Callable[[Item, APIError], None]] = None) -> Outcome:
        """Send every item and write its record (to ``-o FILE``, else to ``stdout``,
        the process's when None); returns how the run ended."""
        spec = self.spec
        assert self.client is not None, "prepare() first"
        sink: "FdSink | StreamSink"
        if spec.output:
            sink = FdSink.open(spec.output, append=spec.resume)
        else:
            sink = stdout_sink(stdout)
        stats = Stats(self.scan.total, self.scan.skipped)
        stats.lost_in_flight = self.lost_in_flight
        try:
            writer = self.writer = RecordWriter(sink, ordered=spec.ordered, window=spec.window)
            if self.lock is not None:
                writer.journal = self.lock.note
            items = reader.read_items(self.path, self.scan.format, spec.defaults,
                                      self.existing.done)
            records = records_for(spec.output_format, self.options.secrets())
            engine = Engine(items, self.client, writer, records, spec.engine, stats,
                            on_progress=on_progress, on_new_error=on_new_error,
                            accounting=spec.accounting)
            return asyncio.run(run_with_signals(engine))
        finally:
            sink.close()

    def _client(self) -> Any:
        """One async client whose pool fits every worker. It does not retry: the
        engine runs each attempt itself (see engine's docstring)."""
        from ..core.aclient import AsyncClient

        options = dataclasses.replace(self.options, retry=RetryPolicy(max_retries=0),
                                      max_time=None)
        return AsyncClient(options, backend=self.spec.backend,
                           pool_size=self.spec.engine.concurrency)


def _load_existing(path: str, fmt: str) -> resume.Existing:
    """The output file for --resume, read and compacted; a failed write is said as one."""
    try:
        return resume.load(path, fmt)
    except OSError as exc:
        raise FileWriteError(f"cannot repair {path} for --resume: {exc.strerror or exc}",
                             path=path, errno=exc.errno) from exc


def spool(stream: Optional[BinaryIO]) -> str:
    """Copy ``stream`` (stdin) to a temporary file and return its path."""
    fd, path = tempfile.mkstemp(prefix="llmcli-batch-", suffix=".input")
    with os.fdopen(fd, "wb") as f:
        if stream is not None:
            shutil.copyfileobj(stream, f, 1 << 20)
    return path
