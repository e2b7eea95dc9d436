"""`llmcli batch`: a file of prompts, run concurrently, one JSONL record per input."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer

from . import common as c
from . import remote as r
from . import scripting as sc
from .env import current
from .errors import (ExitCode, Interrupted, StdoutClosed, add_secret, exit_code_for, report,
                     safe, state)
from .output import warn

_RUN = "Batch options"
_IN_FORMATS = ("auto", "plain", "jsonl", "openai-batch")
_OUT_FORMATS = ("jsonl", "openai-batch")
TTY_INTERVAL = 0.2      # seconds between redraws of the bar
LOG_INTERVAL = 5.0      # seconds between status lines when stderr is not a terminal
_HARD = ("authentication_error", "permission_denied", "not_found")

InputArg = Annotated[str, typer.Argument(metavar="INPUT", show_default=False)]   # help: cli/helptext.py
OutputOpt = Annotated[Optional[str], typer.Option("-o", "--output", metavar="FILE", help="Write the records to FILE instead of stdout (needed for --resume).", rich_help_panel=_RUN)]
InFormat = Annotated[str, typer.Option("--input-format", click_type=click.Choice(_IN_FORMATS), help="Input format; auto looks at the first line.", rich_help_panel=_RUN)]
OutFormat = Annotated[str, typer.Option("--output-format", click_type=click.Choice(_OUT_FORMATS), help="Record shape: llmcli's JSONL or the Batch API's output lines.", rich_help_panel=_RUN)]
Unordered = Annotated[bool, typer.Option("--unordered", help="Write records as they finish instead of in input order.", rich_help_panel=_RUN)]
Concurrency = Annotated[int, typer.Option("-c", "--concurrency", min=1, max=4096, help="Requests in flight at once.", rich_help_panel=_RUN)]
Rpm = Annotated[Optional[float], typer.Option("--rpm", min=0.001, help="Requests per minute at most.", rich_help_panel=_RUN)]
Tpm = Annotated[Optional[float], typer.Option("--tpm", min=1, help="Tokens per minute at most (estimated per request, corrected by usage).", rich_help_panel=_RUN)]
Resume = Annotated[bool, typer.Option("--resume", help="Finish an earlier run into the same -o FILE: skip ids done ok, retry the failed ones, append.", rich_help_panel=_RUN)]
Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing -o FILE.", rich_help_panel=_RUN)]
FailFast = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first item that fails (after its retries).", rich_help_panel=_RUN)]
Grace = Annotated[float, typer.Option("--grace", min=0, help="On Ctrl-C/SIGTERM, seconds to let requests in flight finish.", rich_help_panel=_RUN)]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress and no summary on stderr (warnings and errors still).", rich_help_panel=_RUN)]
SummaryJson = Annotated[Optional[Path], typer.Option("--summary-json", metavar="FILE", help="Also write the summary as JSON to FILE.", rich_help_panel=_RUN)]
MaxCost = Annotated[Optional[float], typer.Option("--max-cost", metavar="USD", min=0.0, callback=c.finite, help="Stop before the spending could pass USD (admission counts the worst case of every request in flight; needs max_tokens and known prices). Exit 9; --resume finishes.", rich_help_panel=_RUN)]
Transport = Annotated[str, typer.Option("--transport", click_type=click.Choice(("aiohttp", "httpx")), help="HTTP transport (aiohttp is the fast one; httpx for comparison).", rich_help_panel="Connection options")]


def batch(
    input: InputArg,
    output: OutputOpt = None,
    concurrency: Concurrency = 16,
    rpm: Rpm = None,
    tpm: Tpm = None,
    resume: Resume = False,
    force: Force = False,
    unordered: Unordered = False,
    input_format: InFormat = "auto",
    output_format: OutFormat = "jsonl",
    fail_fast: FailFast = False,
    grace: Grace = 5.0,
    quiet: Quiet = False,
    summary_json: SummaryJson = None,
    system: c.System = None,
    model: c.Model = None,
    temperature: c.Temperature = None,
    max_tokens: c.MaxTokens = None,
    param: c.Params = None,
    profile: c.Profile = None,
    base_url: c.BaseUrl = None,
    timeout: c.Timeout = None,
    max_time: c.MaxTime = None,
    retries: c.Retries = None,
    transport: Transport = "aiohttp",
    remote: r.RemoteOpt = False,
    detach: r.DetachOpt = False,
    status: r.StatusOpt = False,
    cancel: r.CancelOpt = False,
    dry_run: r.DryRunOpt = False,
    endpoint: r.EndpointOpt = None,
    completion_window: r.WindowOpt = "24h",
    remote_max_lines: r.MaxLinesOpt = 50_000,
    remote_max_bytes: r.MaxBytesOpt = 190_000_000,
    poll_interval: r.PollOpt = 60.0,
    schema: sc.Schema = None,
    schema_retries: sc.SchemaRetries = 0,
    max_cost: MaxCost = None,
) -> None:
    """Run a file of prompts concurrently: exactly one JSONL record per input.

    Records keep the input order (--unordered: as they finish). Rate limits (--rpm,
    --tpm, the server's x-ratelimit-* headers and 429s) slow the whole run down. Ctrl-C
    stops cleanly and prints the command that resumes. Exit 0 when every item
    succeeded, 7 when any failed. See: llmcli docs batch."""
    from ..batch.engine import EngineOptions
    from ..batch.job import JobSpec

    if resume and not output:
        raise click.UsageError("--resume needs -o FILE: it finishes the run in that file")
    from .paths import check_distinct

    check_distinct([("INPUT", input), ("-o", output),
                    ("--summary-json", str(summary_json) if summary_json else None),
                    ("--log-file", state.log_file)])
    if summary_json and not _writable(summary_json):
        raise click.UsageError(f"--summary-json: cannot write {summary_json}: not a file "
                               "in a writable folder")
    settings = c.settings_for(profile=profile, base_url=base_url, model=model,
                              timeout=timeout, max_time=max_time, retries=retries)
    json_schema = sc.read_schema(schema) if schema is not None else None
    defaults = _defaults(settings, system, temperature, max_tokens, param, json_schema)
    if dry_run and not remote:    # no key needed: nothing is sent
        from .batch_cost import dry_run as run_dry

        return run_dry(input, input_format, defaults, settings, summary_json)
    if max_cost is not None and remote:
        raise click.UsageError("--max-cost is for runs that send each request; a --remote "
                               "batch is priced by --dry-run")
    options = c.client_options(settings, key_in_budget=False)
    for secret in options.secrets():    # header credentials too, not only the key
        add_secret(secret)
    if remote or detach or status or cancel or dry_run:
        if not remote:
            raise click.UsageError("--detach, --status and --cancel go with --remote")
        code = r.run_remote(
            input=input, output=output, options=options, input_format=input_format,
            output_format=output_format, resume=resume, force=force, quiet=quiet,
            defaults=defaults,
            detach=detach, status=status, cancel=cancel, dry_run=dry_run, endpoint=endpoint,
            window=completion_window, max_lines=remote_max_lines, max_bytes=remote_max_bytes,
            poll_interval=poll_interval, prices=_prices(settings))
        if code:
            raise typer.Exit(code)
        if dry_run:     # after the parts, what they would cost (batch_cost: the discount)
            from .batch_cost import dry_run as run_dry

            run_dry(input, input_format, defaults, settings, summary_json)
        return
    engine = EngineOptions(concurrency=concurrency, rpm=rpm, tpm=tpm, fail_fast=fail_fast,
                           grace=grace, retry=options.retry, max_time=options.max_time,
                           schema_retries=schema_retries)
    from .batch_cost import accounting

    spec = JobSpec(input=input, output=output, input_format=input_format,
                   output_format=output_format, resume=resume, force=force,
                   ordered=not unordered, defaults=defaults, engine=engine, backend=transport,
                   accounting=accounting(settings, max_cost, defaults, output))
    try:
        code = _run(spec, options, quiet, summary_json)
    finally:
        if spec.accounting.log is not None:
            spec.accounting.log.close()
    if code == ExitCode.INTERRUPTED:
        raise Interrupted()     # the resume line said it: no second "interrupted"
    if code:
        raise typer.Exit(code)


def _defaults(settings: Any, system: Optional[str], temperature: Optional[float],
              max_tokens: Optional[int], param: Optional[list[str]],
              schema: Optional[dict[str, Any]] = None) -> Any:
    """The request options every item gets unless its line sets them."""
    from ..batch.reader import Defaults

    params = c.request_params(settings, temperature, max_tokens, param)
    if schema is not None:
        from ..core.schema import response_format

        params["response_format"] = response_format(schema)
    return Defaults(model=settings["model"] or None,
                    system=system if system is not None else settings["system"],
                    params=params, limits=sc.limits_for(settings))


def _run(spec: Any, options: Any, quiet: bool, summary_json: Optional[Path]) -> int:
    """Prepare, run, report; returns the exit code."""
    from ..batch.job import Job
    from ..batch.progress import summary

    view = _Progress(quiet)
    spec.engine.progress_interval = None if quiet else view.interval
    with Job(spec, options) as job:
        _prepare(job)
        stdout = current().stdout
        stdout.flush()   # what was written as text goes out before the records
        try:
            # Under --fail-fast the first failure ends the run and is reported as its error.
            notice = None if spec.engine.fail_fast else _first_of_its_kind
            outcome = job.run(stdout=stdout, on_progress=view.show, on_new_error=notice)
        except BrokenPipeError:
            raise StdoutClosed() from None
        finally:
            view.clear()
    data = summary(outcome, spec.output)
    code = _exit_code(outcome)
    data["exit_code"] = int(code)
    if outcome.stopped == "write-error" and outcome.error is not None:
        report(outcome.error)     # the one error line, then the summary and how to resume
    _report(job, outcome, data, quiet)
    if summary_json:
        _write_summary(summary_json, data)
    if outcome.error is not None and outcome.stopped != "write-error":
        raise outcome.error     # --fail-fast, or an error every item would share: the
                                # boundary prints it and maps its exit code
    return code


def _writable(path: Path) -> bool:
    """Whether ``path`` can be written as a file: checked before the run, so that a
    typo costs nothing."""
    if path.exists():
        return not path.is_dir() and os.access(path, os.W_OK)
    return os.access(path.absolute().parent, os.W_OK)


def _write_summary(path: Path, data: dict[str, Any]) -> None:
    """Write --summary-json; failing now (the folder went away) costs a warning, not
    the run's exit code."""
    try:
        path.write_text(safe(json.dumps(data, indent=2)) + "\n", encoding="utf-8")
    except OSError as exc:
        warn(f"cannot write --summary-json {path}: {exc.strerror or exc}")


def _prepare(job: Any) -> None:
    from ..batch.reader import InputError

    try:
        job.prepare(current().stdin_bytes)
    except InputError as exc:
        raise click.UsageError(exc.message) from None
    existing = job.existing
    if existing.compacted:
        warn(f"{job.spec.output}: dropped {existing.failed} error record(s), "
             f"{existing.duplicates} duplicate(s), {existing.torn} torn line(s); "
             "those ids run again")
    if job.foreign:
        warn(f"{job.spec.output} holds {job.foreign} ok record(s) whose ids are not in "
             "this input; they are kept")


def _exit_code(outcome: Any) -> ExitCode:
    if outcome.stopped == "interrupted":
        return ExitCode.INTERRUPTED
    if outcome.stopped == "max-cost":
        return ExitCode.MAX_COST
    if outcome.error is not None:   # what stopped the run decides
        return exit_code_for(outcome.error)
    return ExitCode.BATCH_PARTIAL if outcome.stats.failed or outcome.not_run else ExitCode.OK


def _report(job: Any, outcome: Any, data: dict[str, Any], quiet: bool) -> None:
    """The summary, and what to do next, on stderr."""
    from ..batch.progress import summary_lines

    if not quiet:
        for line in summary_lines(data):
            current().write_err(safe(f"llmcli: {line}") + "\n")
    if outcome.stopped == "max-cost" and outcome.reason:
        warn(f"--max-cost: {outcome.reason}")
    if outcome.stopped or (outcome.stats.failed and job.spec.output):
        current().write_err(safe(_next_step(job, outcome)) + "\n")


def _next_step(job: Any, outcome: Any) -> str:
    """The command that finishes the run (items not run, and failed ones retried)."""
    stopped = {"write-error": "stopped by the failed write"}.get(outcome.stopped or "",
                                                                 outcome.stopped)
    what = (f"{stopped}: {outcome.not_run} item(s) not run" if outcome.stopped
            else f"{outcome.stats.failed} item(s) failed")
    if not job.spec.output:
        return f"llmcli: {what}; records went to stdout, so only a run with -o FILE can be resumed"
    args = [a for a in current().argv if a not in ("--force",)]
    command = shlex.join(["llmcli", *args] + ([] if "--resume" in args else ["--resume"]))
    stdin = " (with the same input on stdin)" if job.spec.input == "-" else ""
    return f"llmcli: {what}; to finish the run{stdin}: {command}"


def _first_of_its_kind(item: Any, exc: Any) -> None:
    """Say each kind of failure once, not once per item; the records have them all."""
    from ..core.errors import error_kind

    from .hints import hint_for

    kind = error_kind(exc)
    hint = ("; every item will likely fail the same way (--fail-fast stops at the first)"
            if kind in _HARD else "; any more like it are only in the records")
    why = hint_for(exc)
    warn(f"item {item.id} failed: {exc.message}{'; ' + why if why else ''}{hint}")


class _Progress:
    """A bar redrawn in place on a terminal, a status line now and then otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.tty = not quiet and current().stderr_isatty
        self.interval = TTY_INTERVAL if self.tty else LOG_INTERVAL
        self._drawn = False

    def show(self, stats: Any) -> None:
        """Draw the progress of ``stats``."""
        from ..batch.progress import progress_bar, status_line

        env = current()
        if self.tty:
            width = env.terminal_width() - 1   # a wrapped line breaks the \r
            # fields dropped to fit; cut only on a terminal too narrow for count + ETA
            env.write_err("\r" + safe(progress_bar(stats, width))[:width] + "\x1b[K")
            self._drawn = True
        else:
            env.write_err(safe("llmcli: " + status_line(stats)) + "\n")
        env.stderr.flush()

    def clear(self) -> None:
        """Remove the bar before the summary is written."""
        if self._drawn:
            env = current()
            env.write_err("\r\x1b[K")
            env.stderr.flush()



def register(app: typer.Typer) -> None:
    """Add `batch` to the app."""
    from .helptext import command_settings

    app.command("batch", **command_settings(
        short_help="Run a file of prompts concurrently, one record per input."))(batch)


def _prices(settings: Any) -> Any:
    """The price table for remote records' ``cost`` (at the Batch API's discount)."""
    from .batch_cost import price_table

    return price_table(settings)
