"""Reading the prompt from the argument and stdin: stdin is never silently dropped,
and never waited for without a bound unless asked.

The rule (docs/usage.md, "Prompt and stdin"):

- ``PROMPT`` is ``-``: the prompt is all of stdin, waited for as long as it takes.
- ``--no-stdin``: stdin is never read.
- Otherwise, when stdin is not a terminal (a pipe, a file, a socket): it is read, and
  appended after ``PROMPT`` (or after the ``--messages``/``--conversation`` messages,
  or it is the whole prompt). A slow producer (``git diff``, ``curl``) is waited for:
  its first byte (or its end) may take up to ``LLMCLI_STDIN_WAIT`` seconds (default
  10). If nothing at all arrives by then, the command fails (exit 2) naming
  ``--no-stdin`` and ``-``, and sends nothing: a stdin that stays open and silent
  (a CI runner, a parent process) can neither hang a job forever nor turn into a
  paid answer to the prompt alone.
- An empty or whitespace-only prompt (``llmcli chat ""``, ``llmcli chat - </dev/null``)
  is a usage error: nothing is sent.
"""

from __future__ import annotations

import math
from typing import Optional

import click
import typer

from .env import current

DEFAULT_WAIT = 10.0
WAIT_ENV = "LLMCLI_STDIN_WAIT"


def stdin_is_tty() -> bool:
    """True when stdin is a terminal (or is closed: nothing to read then either)."""
    env = current()
    return env.stdin is None or env.stdin_isatty


def read_stdin() -> str:
    """All of stdin, decoded as UTF-8; undecodable bytes become U+FFFD, with a warning."""
    env = current()
    if env.stdin is None:
        return ""
    raw = env.stdin_bytes
    data = raw.read() if raw is not None else env.stdin.read()
    return decode_utf8(data) if isinstance(data, bytes) else data


def decode_utf8(data: bytes) -> str:
    """``data`` as text. Invalid UTF-8 (a Latin-1 file, a binary) is not refused: it
    is decoded with replacement characters, and one warning says where it started."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        from .output import warn

        warn(f"stdin is not valid UTF-8 (first bad byte at offset {exc.start}); "
             "bad bytes were replaced by U+FFFD (convert it first, e.g. iconv -t UTF-8)")
        return data.decode("utf-8", "replace")


def stdin_ready(wait: Optional[float]) -> bool:
    """Whether stdin has data or EOF within ``wait`` seconds (``None``: no bound).
    Regular files and /dev/null are always ready; only a pipe or socket can stay
    silent. A stream with no file descriptor (bytes given to an in-process run, a
    Windows pipe) is taken as ready."""
    try:
        import select

        stdin = current().stdin
        if stdin is None:
            return True
        ready, _, _ = select.select([stdin], [], [], wait)
        return bool(ready)
    except (OSError, ValueError, TypeError):
        return True


def wait_seconds() -> float:
    """The documented bound on the first byte of piped stdin: ``$LLMCLI_STDIN_WAIT``."""
    raw = current().environ.get(WAIT_ENV)
    try:
        wait = float(raw) if raw else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT
    return wait if math.isfinite(wait) and wait >= 0 else DEFAULT_WAIT


def silent_stdin_error(wait: float, bound: str = WAIT_ENV) -> click.UsageError:
    """The usage error for a stdin that stayed open with nothing on it."""
    return click.UsageError(
        f"stdin is open but nothing arrived on it within {wait:g}s ({bound}), so "
        "nothing was sent: pass --no-stdin if stdin is not input, or '-' as PROMPT to "
        "wait for stdin as long as it takes")


def gather_prompt(prompt: Optional[str], *, no_stdin: bool, has_messages: bool = False,
                  max_time: Optional[float] = None) -> Optional[str]:
    """The prompt text after applying the rule above. ``has_messages``: the messages
    of ``--messages``/``--conversation`` are there to send, so no prompt is needed.
    ``max_time`` (--max-time bounds the whole command) caps the wait for stdin."""
    if prompt == "-":
        if no_stdin:
            raise typer.BadParameter("PROMPT is '-' (stdin) but --no-stdin was given")
        return _not_empty(read_stdin(), "the prompt read from stdin ('-') is empty")
    check_prompt(prompt)
    piped: Optional[str] = None
    if not no_stdin and not stdin_is_tty():
        wait, bound = wait_seconds(), WAIT_ENV
        if max_time and max_time < wait:
            wait, bound = max_time, "--max-time"
        if not stdin_ready(wait):
            raise silent_stdin_error(wait, bound)
        piped = read_stdin()
    text = _join(prompt, piped)
    if text is None and not has_messages:
        why = "stdin was empty" if piped is not None else "give one as an argument or pipe it on stdin"
        raise typer.BadParameter(f"no prompt: {why}", param_hint="PROMPT")
    return text


def check_prompt(prompt: Optional[str]) -> None:
    """A PROMPT argument that is empty or only whitespace is a usage error, whatever
    else there is to send (interactive chat included)."""
    if prompt is not None and prompt != "-":
        _not_empty(prompt, "the prompt is empty (an unset shell variable?); nothing was sent")


def _not_empty(text: str, message: str) -> str:
    if not text.strip():
        raise typer.BadParameter(message, param_hint="PROMPT")
    return text


def _join(prompt: Optional[str], piped: Optional[str]) -> Optional[str]:
    if piped is not None and not piped.strip():
        piped = None
    if prompt is None:
        return piped
    return prompt if piped is None else f"{prompt}\n\n{piped.rstrip()}"
