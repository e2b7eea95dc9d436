"""The Typer app: global options, the command modules, and the error boundary."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import click
import typer

from .. import __version__
from ..core.errors import LLMCLIError
from .env import Environment, current, using
from .errors import (ExitCode, Interrupted, StdoutClosed, report, report_usage,
                     silence_stdout, state)
from .helptext import Group
from .output import Out

HELP = """A fast, scriptable client for OpenAI-compatible LLM APIs.

\b
Quick start:
  export OPENAI_API_KEY=sk-...              # or: llmcli config init
  llmcli chat "Name three prime numbers"    # git diff | llmcli chat "Review"

\b
Environment: OPENAI_API_KEY and OPENAI_BASE_URL (the API, as the OpenAI SDK
reads them), LLMCLI_MODEL, LLMCLI_PROFILE, LLMCLI_CONFIG, LLMCLI_STDIN_WAIT;
all of them: llmcli docs config. Every page: llmcli docs."""

app = typer.Typer(
    name="llmcli",
    help=HELP,
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    # Click itself suggests a close command name; Typer's own suggestion doubled it.
    suggest_commands=False,
    # Plain help, no rich: rich help costs ~90 ms more on every --help (110 -> 200 ms,
    # docs/performance.md).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        Out().write(f"llmcli {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log each request, its status and timing, and every retry, on stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs on stderr.")] = False,
    log_file: Annotated[Optional[Path], typer.Option("--log-file", metavar="FILE", help="Append debug logs to this file (keys masked).", envvar="LLMCLI_LOG_FILE")] = None,
    config: Annotated[Optional[str], typer.Option("--config", metavar="FILE", help="Config file to use instead of the user config dir's.", envvar="LLMCLI_CONFIG")] = None,
    api: Annotated[Optional[str], typer.Option("--api", metavar="API", help="API dialect: openai-chat, openai-responses, anthropic or gemini (llmcli docs providers).", show_default="openai-chat", envvar="LLMCLI_API", show_envvar=False)] = None,
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    state.debug = debug
    state.config = config
    state.log_file = str(log_file) if log_file else None
    if api is not None:
        from ..core.dialects import names

        if api not in names():
            raise typer.BadParameter(f"{api!r} is not one of {', '.join(names())}",
                                     param_hint="--api")
    state.api = api
    from .output import setup_logging

    setup_logging(verbose=verbose, debug=debug, log_file=log_file)


def _register() -> None:
    from . import batch, batches, chat, config_cmd, docs_cmd, models, usage_cmd

    chat.register(app)
    batch.register(app)
    batches.register(app)
    models.register(app)
    usage_cmd.register(app)
    app.add_typer(config_cmd.app, name="config")
    docs_cmd.register(app)


_register()


GLOBAL_FLAGS = ("-v", "--verbose", "--debug")
VALUE_FLAGS = ("--api",)   # global flags that take a value


def _hoisted(args: list[str]) -> tuple[list[str], list[str]]:
    """Split ``args`` into the global flags (with their values) and the rest."""
    flags: list[str] = []
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in GLOBAL_FLAGS or arg.startswith(tuple(f + "=" for f in VALUE_FLAGS)):
            flags.append(arg)
        elif arg in VALUE_FLAGS:
            flags.extend([arg, next(it, "")])
        else:
            rest.append(arg)
    return flags, rest


def hoist_global_flags(args: list[str]) -> list[str]:
    """Let -v/--verbose/--debug and --api stand anywhere before ``--`` (``llmcli chat
    hi -v``), as people type them, by moving them in front of the subcommand where
    Click wants them."""
    end = args.index("--") if "--" in args else len(args)
    flags, rest = _hoisted(args[:end])
    if not flags:
        return args
    return flags + rest + args[end:]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> Callable[[], None]:
    """Make SIGTERM end the run as Ctrl-C does (exit 130, what was printed is kept);
    return a function that puts the previous handler back. Only the main thread can
    set handlers. `batch` still stops gracefully on both signals: while it runs, its
    event loop's own handlers (llmcli/batch/engine.py) take the place of this one."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)
    return restore


def run(args: list[str], env: Optional[Environment] = None) -> int:
    """Run the app on ``args`` in ``env`` (the real process's when None); every failure
    becomes one stderr line and an exit code. Nothing the run sets outlives it."""
    env = env if env is not None else Environment.from_process(args)
    with using(env), _stdio(env):
        if env.stdout_closed:   # `llmcli ... >&-`: nowhere to print, so do not even send
            env.write_err("llmcli: error: stdout is closed: nowhere to write the output\n")
            return ExitCode.BROKEN_PIPE
        restore = sigterm_as_interrupt()
        try:
            return _run(hoist_global_flags(args))
        finally:
            restore()
            for cleanup in reversed(env.cleanups):
                cleanup()
            env.cleanups.clear()


@contextmanager
def _stdio(env: Environment) -> Iterator[None]:
    """Point ``sys.stdout``/``sys.stderr`` at the run's streams while it lasts: Click
    writes --help and its prompts there, not through our environment."""
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = env.stdin, env.stdout, env.stderr
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


def _run(args: list[str]) -> int:
    try:
        # Non-standalone Click returns the code of a ctx.exit() instead of raising, and
        # Typer turns Ctrl-C into exit 130 that way; our commands return None.
        result = app(args=args, prog_name="llmcli", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == ExitCode.INTERRUPTED:
            current().write_err("\nllmcli: interrupted\n")
        return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        # `llmcli` or `llmcli config` alone: the help, printed as help (stdout, like
        # --help), with Click's exit status for it, 2, since nothing was done.
        out = Out()
        out.write(exc.ctx.get_help() + "\n")
        out.flush()
        return ExitCode.USAGE
    except click.UsageError as exc:
        state.json_errors = state.json_errors or "--json" in args
        ctx = exc.ctx
        return report_usage(exc.format_message(), ctx.command_path if ctx else None)
    except click.ClickException as exc:
        return report_usage(exc.format_message(), None)
    except (KeyboardInterrupt, click.exceptions.Abort):
        current().write_err("\nllmcli: interrupted\n")
        return ExitCode.INTERRUPTED
    except Interrupted:
        return ExitCode.INTERRUPTED
    except (StdoutClosed, BrokenPipeError):
        silence_stdout()
        return ExitCode.BROKEN_PIPE
    except LLMCLIError as exc:
        return report(exc)
    except Exception as exc:  # the boundary: anything else is a bug, reported in one line
        return report(exc)
