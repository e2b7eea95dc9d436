"""`llmcli batch --remote`: the provider's Batch API behind the same command.

The options are declared here and added to `llmcli batch` (cli/batch.py hands over to
:func:`run_remote` when --remote is given); the work is in llmcli/batch/remote/.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Annotated, Any, Optional

import click
import typer

from .env import current
from .errors import ExitCode, Interrupted, safe
from .output import warn

_PANEL = "Remote batch options (--remote)"
LOG_INTERVAL = 5.0
BAR_WIDTH = 24
# Columns of the --dry-run table: (key, heading). Another column (a cost) is one entry.
PLAN_COLUMNS = [("part", "part"), ("lines", "lines"), ("bytes", "bytes"),
                ("first_line", "first line"), ("last_line", "last line")]

RemoteOpt = Annotated[bool, typer.Option("--remote", help="Run on the provider's Batch API (upload, create, wait, download) instead of sending each request.", rich_help_panel=_PANEL)]
DetachOpt = Annotated[bool, typer.Option("--detach", help="Submit and exit at once, printing the batch ids; --resume later collects.", rich_help_panel=_PANEL)]
StatusOpt = Annotated[bool, typer.Option("--status", help="Print the remote job of -o FILE (parts, batches, statuses) as JSON; changes nothing.", rich_help_panel=_PANEL)]
CancelOpt = Annotated[bool, typer.Option("--cancel", help="Cancel the running batches of the remote job of -o FILE.", rich_help_panel=_PANEL)]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Send nothing: print the items, estimated input tokens and cost range (output bounded by max_tokens); with --remote, first the parts that would be uploaded.", rich_help_panel=_PANEL)]
EndpointOpt = Annotated[Optional[str], typer.Option("--endpoint", click_type=click.Choice(("/v1/chat/completions", "/v1/embeddings", "/v1/responses")), help="Batch endpoint [default: the input's url, else /v1/chat/completions].", rich_help_panel=_PANEL, show_default=False)]
WindowOpt = Annotated[str, typer.Option("--completion-window", help="The batches' completion window.", rich_help_panel=_PANEL)]
MaxLinesOpt = Annotated[int, typer.Option("--remote-max-lines", min=1, help="Requests per uploaded file at most.", rich_help_panel=_PANEL)]
MaxBytesOpt = Annotated[int, typer.Option("--remote-max-bytes", min=1024, help="Bytes per uploaded file at most.", rich_help_panel=_PANEL)]
PollOpt = Annotated[float, typer.Option("--poll-interval", min=0.01, help="Seconds between polls at most (polling starts at 1 s and backs off to this).", rich_help_panel=_PANEL)]


def run_remote(*, input: str, output: Optional[str], options: Any, defaults: Any,
               input_format: str, output_format: str, resume: bool, force: bool, quiet: bool,
               detach: bool, status: bool, cancel: bool, dry_run: bool,
               endpoint: Optional[str], window: str, max_lines: int, max_bytes: int,
               poll_interval: float, prices: Any = None) -> int:
    """The whole --remote command; returns the exit code."""
    from ..batch.reader import InputError
    from ..batch.remote.providers import engine_for
    from ..batch.remote.runner import RemoteSpec, Runner

    if not output:
        raise click.UsageError("--remote needs -o FILE: the job's state is kept beside it")
    if input == "-":
        raise click.UsageError("--remote reads INPUT twice and again on --resume: give a file, not -")
    api, endpoint = engine_for(options, endpoint)
    spec = RemoteSpec(input=input, output=output, input_format=input_format,
                      output_format=output_format, defaults=defaults, endpoint=endpoint,
                      window=window, max_lines=max_lines, max_bytes=max_bytes,
                      poll_interval=poll_interval, resume=resume or status or cancel,
                      force=force or dry_run,     # a dry run writes nothing
                      max_wait=options.max_time, prices=prices)
    view = _View(quiet)
    from ..core.filelock import holding

    # One writer per output, as for a local batch (only reading the state is shared).
    with api, holding(output, active=not (status or cancel or dry_run)):
        runner = Runner(spec, api, secrets=options.secrets(), on_progress=view.show,
                        on_note=None if dry_run else (lambda text: warn(text)))
        try:
            runner.prepare(read_only=status or cancel)
        except InputError as exc:
            raise click.UsageError(exc.message) from None
        if dry_run:
            return _dry_run(runner)
        if status:
            return _status(runner)
        if cancel:
            return _cancel(runner)
        return _run(runner, view, detach)


def _run(runner: Any, view: "_View", detach: bool) -> int:
    import signal

    from ..batch.remote.runner import WaitExpired
    from ..core.errors import APITimeoutError

    runner.open_output()
    previous = signal.signal(signal.SIGTERM, _sigterm)   # SIGTERM detaches like Ctrl-C
    try:
        runner.recover()
        runner.wait(block=False)          # collect what ended while we were away
        runner.submit()
        if detach:
            _print_ids(runner)
            return ExitCode.OK
        runner.wait()
    except (WaitExpired, APITimeoutError) as exc:
        if isinstance(exc, APITimeoutError) and not _budget_spent(runner):
            raise   # one request timed out, not --max-time
        view.clear()
        raise APITimeoutError(
            f"--max-time {runner.spec.max_wait:g}s spent waiting; the batches keep running "
            f"remotely ({runner.unfinished()} item(s)); to reattach: {_resume_command()}") from None
    except KeyboardInterrupt:
        view.clear()
        current().write_err(safe(f"llmcli: detached: {runner.unfinished()} item(s) still "
                              f"running remotely; to reattach: {_resume_command()}") + "\n")
        raise Interrupted() from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        runner.close()
        view.clear()
    return _finish(runner, view)


def _budget_spent(runner: Any) -> bool:
    """Whether --max-time ran out inside a request of the job (a stalled download)."""
    deadline = getattr(runner.api, "deadline", None)
    left = deadline.remaining() if deadline is not None else None
    return left is not None and left <= 0


def _out(text: str) -> None:
    """Write to stdout (flushed: --detach's ids are for the script waiting on them)."""
    stream = current().stdout
    if stream is not None:
        stream.write(text)
        stream.flush()


def _flush_err() -> None:
    stream = current().stderr
    if stream is not None:
        stream.flush()


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _finish(runner: Any, view: "_View") -> int:
    p = runner.progress
    if not view.quiet:
        head = f"batch --remote: {p.ok_records} ok, {p.failed_records} failed"
        current().write_err(safe(f"llmcli: {head}") + "\n")
        if p.errors:
            current().write_err("llmcli: errors: " + ", ".join(
                f"{k} {v}" for k, v in sorted(p.errors.items())) + "\n")
    if p.failed_records:
        current().write_err(safe(f"llmcli: {p.failed_records} item(s) failed; to send them "
                              f"again: {_resume_command()}") + "\n")
        return ExitCode.BATCH_PARTIAL
    return ExitCode.OK


def _resume_command() -> str:
    args = [a for a in current().argv if a not in ("--force", "--detach")]
    return shlex.join(["llmcli", *args] + ([] if "--resume" in args else ["--resume"]))


def _print_ids(runner: Any) -> None:
    from ..batch.remote.runner import reattach_ids

    for batch_id in reattach_ids(runner.state):
        _out(batch_id + "\n")
    current().write_err(safe(f"llmcli: submitted; to collect the results: {_resume_command()}") + "\n")


def _dry_run(runner: Any) -> int:
    rows = runner.plan()
    table = [[h for _, h in PLAN_COLUMNS]] + [
        [f"{r[k]:,}" if isinstance(r[k], int) and k != "part" else str(r[k])
         for k, _ in PLAN_COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(PLAN_COLUMNS))]
    for row in table:
        _out("  ".join(cell.rjust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    lines, size = sum(r["lines"] for r in rows), sum(r["bytes"] for r in rows)
    _out(f"total: {len(rows)} part(s), {lines:,} request(s), {size:,} bytes, "
                     f"endpoint {runner.endpoint}; nothing was sent\n")
    return ExitCode.OK


def _status(runner: Any) -> int:
    from ..batch.remote.state import to_dict

    runner.poll()
    data = to_dict(runner.state)
    data["progress"] = vars(runner.progress)
    _out(safe(json.dumps(data, indent=2)) + "\n")
    return ExitCode.OK


def _cancel(runner: Any) -> int:
    for part in runner.cancel():
        _out(f"{part.batch_id}\t{part.status}\n")
    current().write_err(safe(f"llmcli: cancel requested; to collect what ran and record the "
                          f"rest as failed: {_resume_command().replace(' --cancel', '')}") + "\n")
    return ExitCode.OK


class _View:
    """A bar redrawn at each poll on a terminal, a status line every few seconds otherwise."""

    def __init__(self, quiet: bool, clock: Any = time.monotonic) -> None:
        self.quiet, self.clock = quiet, clock
        self.tty = not quiet and current().stderr_isatty
        self._last = float("-inf")
        self._drawn = False

    def show(self, p: Any) -> None:
        """Draw the job's progress."""
        if self.quiet:
            return
        done = p.completed + p.failed
        statuses = " ".join(f"{k} {v}" for k, v in sorted(p.statuses.items()))
        text = (f"{done}/{p.total} requests (ok {p.completed}, failed {p.failed}); "
                f"parts {p.merged}/{p.parts} merged; {statuses}")
        if self.tty:
            filled = int(BAR_WIDTH * done / max(p.total, 1))
            width = current().terminal_width() - 1
            line = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] " + text
            current().write_err("\r" + safe(line)[:width] + "\x1b[K")
            self._drawn = True
        elif self.clock() - self._last >= LOG_INTERVAL:
            self._last = self.clock()
            current().write_err(safe("llmcli: batch --remote: " + text) + "\n")
        _flush_err()

    def clear(self) -> None:
        """Remove the bar."""
        if self._drawn:
            current().write_err("\r\x1b[K")
            _flush_err()
            self._drawn = False
