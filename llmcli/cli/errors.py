"""The one error boundary: exceptions -> one line on stderr and a documented exit code.

The table :data:`EXIT_CODES` is the only place an error class meets an exit status;
docs/exit-codes.md documents it and a test keeps the two in step.
"""

from __future__ import annotations

import json
import os
from enum import IntEnum
from typing import Any, Optional

from ..core.errors import (APIConnectionError, APIError, AuthenticationError, BusyError,
                           ConfigError, FileWriteError, LLMCLIError, PermissionDeniedError,
                           SchemaValidationError,
                           error_kind)
from ..core.options import redact
from ..core.sanitize import neutralize
from .env import current


class ExitCode(IntEnum):
    """llmcli's exit statuses. Stable: scripts depend on them."""

    OK = 0
    ERROR = 1            # an unexpected error (a bug): please report it
    USAGE = 2            # bad flags or arguments, no prompt
    CONFIG = 3           # bad config file, unknown profile, missing API key
    AUTH = 4             # 401 / 403: the key is missing, wrong or not allowed
    API = 5              # any other API error, after retries: 4xx, 5xx, invalid response
    NETWORK = 6          # no answer: connection refused/reset/dropped, timeouts, --max-time
    BATCH_PARTIAL = 7    # batch: some items failed, the others succeeded
    SCHEMA = 8           # chat/stream --schema: the reply is not JSON of the schema's shape
    MAX_COST = 9         # batch --max-cost: stopped before the budget could be exceeded
    IO_ERROR = 74        # a file could not be written: disk full, I/O error (sysexits EX_IOERR)
    BUSY = 75            # another llmcli is writing the same file; try again (EX_TEMPFAIL)
    INTERRUPTED = 130    # Ctrl-C or SIGTERM
    BROKEN_PIPE = 141    # the reader of stdout went away (`| head -1`), as SIGPIPE would


# Most specific first: the first class an error is an instance of decides.
EXIT_CODES: list[tuple[type[LLMCLIError], ExitCode]] = [
    (ConfigError, ExitCode.CONFIG),
    (BusyError, ExitCode.BUSY),
    (FileWriteError, ExitCode.IO_ERROR),
    (AuthenticationError, ExitCode.AUTH),
    (PermissionDeniedError, ExitCode.AUTH),
    (APIConnectionError, ExitCode.NETWORK),
    (SchemaValidationError, ExitCode.SCHEMA),
    (APIError, ExitCode.API),
    (LLMCLIError, ExitCode.ERROR),
]


def exit_code_for(exc: LLMCLIError) -> ExitCode:
    """The exit status for one of our errors."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return ExitCode.ERROR


class StdoutClosed(Exception):
    """The reader of stdout went away. Not an OSError on purpose: Click turns an EPIPE
    OSError into a bare exit 1, and we want the documented 141."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped a command that has already said so on stderr (batch
    prints what was not run and how to resume): exit 130 with no second line."""


class _RunState:
    """The run state of the current :class:`~llmcli.cli.env.Environment`, under its
    old module-level name: ``state.json_errors = True`` sets it on the run in
    progress, so nothing one run sets is seen by the next."""

    _FIELDS = ("debug", "json_errors", "config", "api", "secrets", "log_file")

    def __getattr__(self, name: str) -> Any:
        if name not in self._FIELDS:
            raise AttributeError(name)
        return getattr(current(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._FIELDS:
            raise AttributeError(name)
        setattr(current(), name, value)


state = _RunState()


def add_secret(secret: Optional[str]) -> None:
    """Register a value that must be masked in anything printed or logged."""
    secrets = current().secrets
    if secret and secret not in secrets:
        secrets.append(secret)


def safe(text: str) -> str:
    """``text`` as it may reach stderr or a log: every registered secret masked, and
    control characters and terminal escapes from a server made visible, not obeyed."""
    return neutralize(redact(text, current().secrets))


def _payload(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "status": None, "code": None,
            "retryable": False, "request_id": None}


def report(exc: BaseException) -> ExitCode:
    """Print one line (and, with --json, one JSON object) for ``exc``; return its code."""
    if isinstance(exc, LLMCLIError):
        code, message = exit_code_for(exc), exc.message
        payload = exc.to_dict() if isinstance(exc, APIError) else _payload(error_kind(exc), message)
    else:
        code, message = ExitCode.ERROR, f"unexpected {type(exc).__name__}: {exc}"
        payload = _payload("internal_error", message)
    request_id = getattr(exc, "request_id", None)
    line = message + (f" (request id {request_id})" if request_id else "")
    from .hints import hint_for

    hint = hint_for(exc)
    line += f"; {hint}" if hint else ""
    env = current()
    if env.debug:
        import traceback

        env.write_err(safe("".join(traceback.format_exception(exc))))
    elif code == ExitCode.ERROR:
        line += " (run again with --debug for a traceback, and please report it)"
    return emit(code, line, payload)


def report_usage(message: str, help_command: Optional[str]) -> ExitCode:
    """A usage error (bad flag, missing prompt) as one line, like every other error."""
    hint = f" (see '{help_command} --help')" if help_command else ""
    return emit(ExitCode.USAGE, message + hint, _payload("usage_error", message))


def emit(code: ExitCode, line: str, payload: dict[str, Any]) -> ExitCode:
    """Write the error line, and its JSON object when --json asked for one."""
    env = current()
    env.write_err(safe(f"llmcli: error: {line}") + "\n")
    if env.json_errors:
        payload["exit_code"] = int(code)
        env.write_err(safe(json.dumps({"error": payload}, ensure_ascii=False)) + "\n")
    return code


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the final flush cannot fail."""
    stdout = current().stdout
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
