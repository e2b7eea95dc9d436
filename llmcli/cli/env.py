"""The explicit environment of one CLI run (after httpie's ``context.Environment``).

Everything a command reads from or writes to the outside world goes through an
:class:`Environment`: stdin, stdout, stderr (text, with the bytes underneath), the
environment variables, whether each stream is a terminal, the config dir, the terminal
width, the arguments as typed, and the run state the error boundary needs (``--debug``,
``--json``, ``--config``, the secrets to mask). ``main(args, env)`` (llmcli/cli/app.py)
makes ``env`` the current one for the run and drops it after, so a test runs a command
in-process with its own streams and variables, and nothing set by one run is seen by
the next.

The current environment lives in a :class:`contextvars.ContextVar`: code deep in a
command (``warn``, ``Out``, the stdin rule) asks :func:`current` instead of threading a
parameter through Typer's signatures; ``asyncio`` tasks (batch) inherit it.
"""

from __future__ import annotations

import contextvars
import io
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Callable, Iterator, Mapping, Optional, TextIO


def _isatty(stream: Optional[IO]) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):   # closed
        return False


@dataclass
class Environment:
    """One run's streams, variables and terminal facts, and its mutable run state."""

    stdin: Optional[TextIO] = None     # None: closed (`<&-`), nothing to read
    # Never None, so that every writer can write: a closed stream (`>&-`, `2>&-`) is a
    # StringIO that nobody reads, with the *_closed flag saying so.
    stdout: TextIO = field(default_factory=io.StringIO)
    stderr: TextIO = field(default_factory=io.StringIO)
    stdout_closed: bool = False
    stderr_closed: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)      # the arguments, as typed
    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    columns: Optional[int] = None                       # None: ask the terminal
    # Run state, set by the commands as they parse and read by the error boundary.
    debug: bool = False
    json_errors: bool = False
    config: Optional[str] = None       # --config, for the commands that load settings
    api: Optional[str] = None          # --api, the same
    log_file: Optional[str] = None     # --log-file: batch keeps its outputs apart from it
    secrets: list[str] = field(default_factory=list)
    hint_context: Optional[object] = None   # cli/hints.py: what error hints need to know
    # Undo what the run set on process-wide objects (logging handlers), newest first.
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def from_process(cls, argv: Optional[list[str]] = None) -> "Environment":
        """The real process's streams, ``os.environ`` and terminal."""
        return cls(stdin=sys.stdin, stdout=sys.stdout or io.StringIO(),
                   stderr=sys.stderr or io.StringIO(), stdout_closed=sys.stdout is None,
                   stderr_closed=sys.stderr is None, environ=os.environ,
                   argv=list(sys.argv[1:] if argv is None else argv),
                   stdin_isatty=_isatty(sys.stdin), stdout_isatty=_isatty(sys.stdout),
                   stderr_isatty=_isatty(sys.stderr))

    @property
    def stdin_bytes(self) -> Optional[BinaryIO]:
        """stdin as bytes (the buffer under the text stream), or None when closed."""
        if self.stdin is None:
            return None
        return getattr(self.stdin, "buffer", None)

    @property
    def stdout_bytes(self) -> Optional[BinaryIO]:
        """stdout as bytes, when the text stream has a buffer under it."""
        return getattr(self.stdout, "buffer", None)

    def config_dir(self) -> Path:
        """The user config dir as this run's variables place it."""
        from ..config.files import config_dir

        return config_dir(self.environ)

    def terminal_width(self) -> int:
        """Columns of the terminal on stderr (progress bars), ``$COLUMNS`` first."""
        if self.columns is not None:
            return self.columns
        try:
            return int(self.environ.get("COLUMNS", ""))
        except ValueError:
            pass
        try:
            return os.get_terminal_size(self.stderr.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80

    def write_err(self, text: str) -> None:
        """Write to stderr (nowhere, after ``2>&-``)."""
        self.stderr.write(text)


_current: contextvars.ContextVar[Environment] = contextvars.ContextVar("llmcli_env")


def current() -> Environment:
    """The environment of the run in progress; outside a run (a unit test of one
    helper), a fresh one on the real process each time, so nothing set there lasts."""
    try:
        return _current.get()
    except LookupError:
        return Environment.from_process()


@contextmanager
def using(env: Environment) -> Iterator[Environment]:
    """Make ``env`` the current environment for the ``with`` block."""
    token = _current.set(env)
    try:
        yield env
    finally:
        _current.reset(token)
