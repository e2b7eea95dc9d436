"""Reading the prompt from the argument and stdin, without ever hanging on stdin.

The rule (docs/usage.md, "Prompt and stdin"):

- ``PROMPT`` is ``-``: the prompt is all of stdin.
- Nothing else to send (no ``PROMPT``, no ``--messages``/``--conversation`` messages),
  stdin not a terminal: the prompt is all of stdin (we wait for it).
- Something else to send (``PROMPT``, or the messages of ``--messages FILE`` or
  ``--conversation FILE``) and stdin not a terminal: stdin is appended after the
  prompt (or is the prompt after the messages) if its first byte (or its end) arrives
  within ``LLMCLI_STDIN_WAIT`` seconds (default 1); otherwise it is ignored with a
  warning. An inherited stdin that stays open and silent (a CI runner, a parent
  process) therefore costs at most that wait.
- ``--no-stdin``: stdin is never read.
"""

from __future__ import annotations

import math
from typing import Optional

import typer

from .env import current

DEFAULT_WAIT = 1.0


def stdin_is_tty() -> bool:
    """True when stdin is a terminal (or is closed: nothing to read then either)."""
    env = current()
    return env.stdin is None or env.stdin_isatty


def read_stdin() -> str:
    """All of stdin, decoded as UTF-8."""
    env = current()
    if env.stdin is None:
        return ""
    raw = env.stdin_bytes
    data = raw.read() if raw is not None else env.stdin.read()
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def stdin_ready(wait: float) -> bool:
    """Whether stdin has data or EOF within ``wait`` seconds. Regular files and
    /dev/null are always ready; only a pipe or socket can stay silent. A stream with
    no file descriptor (bytes given to an in-process run) is ready: it is all there."""
    try:
        import select

        stdin = current().stdin
        if stdin is None:
            return True
        ready, _, _ = select.select([stdin], [], [], wait)
        return bool(ready)
    except (OSError, ValueError, TypeError):   # Windows pipes cannot be selected
        return True


def _wait_seconds() -> float:
    raw = current().environ.get("LLMCLI_STDIN_WAIT")
    try:
        wait = float(raw) if raw else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT
    return wait if math.isfinite(wait) and wait >= 0 else DEFAULT_WAIT


def gather_prompt(prompt: Optional[str], *, no_stdin: bool,
                  has_messages: bool = False) -> Optional[str]:
    """The prompt text after applying the rule above. ``has_messages``: the messages
    of ``--messages``/``--conversation`` are there to send, so no prompt is needed."""
    if prompt == "-":
        if no_stdin:
            raise typer.BadParameter("PROMPT is '-' (stdin) but --no-stdin was given")
        return read_stdin()
    piped: Optional[str] = None
    if not no_stdin and not stdin_is_tty():
        if (prompt is None and not has_messages) or stdin_ready(_wait_seconds()):
            piped = read_stdin()
        else:
            from .output import warn

            warn(f"ignoring stdin: nothing arrived within {_wait_seconds():g}s "
                 "(use --no-stdin to skip the wait, or LLMCLI_STDIN_WAIT to lengthen it)")
    text = _join(prompt, piped)
    if text is None and not has_messages:
        raise typer.BadParameter("no prompt: give one as an argument or pipe it on stdin",
                                 param_hint="PROMPT")
    return text


def _join(prompt: Optional[str], piped: Optional[str]) -> Optional[str]:
    if piped is not None and not piped.strip():
        piped = None
    if prompt is None:
        return piped
    return prompt if piped is None else f"{prompt}\n\n{piped.rstrip()}"
