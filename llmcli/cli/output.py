"""Writing to the terminal: stdout for the answer, stderr for everything else."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from .env import current
from .errors import StdoutClosed, safe


class _Redact(logging.Filter):
    """Masks every registered secret in a log record before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = safe(record.getMessage())
        record.args = None
        return True


def setup_logging(*, verbose: bool, debug: bool, log_file: Optional[Path]) -> None:
    """-v: INFO on stderr; --debug: DEBUG on stderr; --log-file: DEBUG to a file.
    :func:`reset_logging` undoes it at the end of the run."""
    if not (verbose or debug or log_file):
        return
    logger = logging.getLogger("llmcli")
    current().cleanups.append(reset_logging)
    logger.setLevel(logging.DEBUG if (debug or log_file) else logging.INFO)
    logger.propagate = False
    logger.addFilter(_Redact())
    if verbose or debug:
        console = logging.StreamHandler(current().stderr)
        console.setLevel(logging.DEBUG if debug else logging.INFO)
        console.setFormatter(logging.Formatter("llmcli: %(message)s"))
        logger.addHandler(console)
    if log_file:
        try:
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            import typer

            raise typer.BadParameter(f"cannot open {log_file}: {exc.strerror or exc}",
                                     param_hint="--log-file") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def reset_logging() -> None:
    """Take off what :func:`setup_logging` put on the ``llmcli`` logger (handlers,
    filters, level), closing the handlers, so the next run in this process (a test)
    starts clean and no log file stays open."""
    logger = logging.getLogger("llmcli")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for log_filter in list(logger.filters):
        logger.removeFilter(log_filter)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def warn(message: str) -> None:
    """One warning line on stderr."""
    current().write_err(safe(f"llmcli: warning: {message}") + "\n")


def dumps(obj: Any) -> str:
    """Compact, stable JSON (keys in the order the docs give), UTF-8 kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Out:
    """stdout as UTF-8 bytes. ``flush()`` after each network read when streaming, so a
    reader sees every token as soon as it arrives without one syscall per token."""

    def __init__(self) -> None:
        self._stdout = current().stdout
        self._buf = getattr(self._stdout, "buffer", None)

    def write(self, text: str) -> None:
        """Write text; a closed reader becomes :class:`StdoutClosed`."""
        try:
            if self._buf is None:
                self._stdout.write(text)
            else:
                self._buf.write(text.encode("utf-8", "replace"))
        except BrokenPipeError:
            raise StdoutClosed() from None

    def flush(self) -> None:
        """Push what is buffered to the reader."""
        try:
            (self._buf or self._stdout).flush()
        except BrokenPipeError:
            raise StdoutClosed() from None
