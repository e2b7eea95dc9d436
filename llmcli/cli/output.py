"""Writing to the terminal: stdout for the answer, stderr for everything else."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

from .errors import StdoutClosed, safe


class _Redact(logging.Filter):
    """Masks every registered secret in a log record before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = safe(record.getMessage())
        record.args = None
        return True


def setup_logging(*, verbose: bool, debug: bool, log_file: Optional[Path]) -> None:
    """-v: INFO on stderr; --debug: DEBUG on stderr; --log-file: DEBUG to a file."""
    if not (verbose or debug or log_file):
        return
    logger = logging.getLogger("llmcli")
    logger.setLevel(logging.DEBUG if (debug or log_file) else logging.INFO)
    logger.propagate = False
    logger.addFilter(_Redact())
    if verbose or debug:
        console = logging.StreamHandler(sys.stderr)
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


def warn(message: str) -> None:
    """One warning line on stderr."""
    sys.stderr.write(safe(f"llmcli: warning: {message}") + "\n")


def dumps(obj: Any) -> str:
    """Compact, stable JSON (keys in the order the docs give), UTF-8 kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Out:
    """stdout as UTF-8 bytes. ``flush()`` after each network read when streaming, so a
    reader sees every token as soon as it arrives without one syscall per token."""

    def __init__(self) -> None:
        self._buf = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None

    def write(self, text: str) -> None:
        """Write text; a closed reader becomes :class:`StdoutClosed`."""
        try:
            if self._buf is None:
                sys.stdout.write(text)
            else:
                self._buf.write(text.encode("utf-8", "replace"))
        except BrokenPipeError:
            raise StdoutClosed() from None

    def flush(self) -> None:
        """Push what is buffered to the reader."""
        try:
            (self._buf or sys.stdout).flush()
        except BrokenPipeError:
            raise StdoutClosed() from None
