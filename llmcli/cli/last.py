"""``chat -c/--continue``: the most recent conversation, kept in the user's state dir.

Every one-shot ``chat``/``stream`` turn that got a whole reply replaces
``STATE_DIR/last-conversation.json`` with the messages sent and the reply (atomically,
mode 0600, as ``--conversation`` files are), unless the config says
``keep_last_conversation: false``. ``llmcli chat -c "and in French?"`` sends those
messages, then the new prompt, as users of ``llm -c`` expect.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

from .env import current

FILE_NAME = "last-conversation.json"
Messages = list[dict[str, Any]]


def state_dir() -> Path:
    """The user's state dir for llmcli: ``$XDG_STATE_HOME/llmcli`` (else
    ``~/.local/state/llmcli``), ``~/Library/Application Support/llmcli`` on macOS,
    ``%LOCALAPPDATA%\\llmcli`` on Windows."""
    environ = current().environ
    if sys.platform == "win32":
        base = Path(environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "llmcli"


def last_path() -> Path:
    """Where the most recent conversation is kept."""
    return state_dir() / FILE_NAME


def load_last(refs: Optional[dict[int, Any]] = None) -> Messages:
    """The most recent conversation; a usage error when there is none yet. Its
    attachments, kept by reference, are read again (``refs`` learns them)."""
    import typer

    from .conversation import load_conversation

    path = last_path()
    messages = load_conversation(path, refs)
    if not messages:
        raise typer.BadParameter(f"no conversation to continue yet ({path} is missing): "
                                 "start one with llmcli chat PROMPT", param_hint="--continue")
    return messages


def save_last(messages: Messages, keep: Optional[bool],
              refs: Optional[dict[int, Any]] = None) -> None:
    """Keep ``messages`` as the most recent conversation, unless the config opted out;
    attachments in ``refs`` are kept by reference (path and SHA-256), as
    ``--conversation`` keeps them. A failure costs a warning, never the run: the reply
    is already printed."""
    if keep is False:
        return
    from .output import warn

    if refs:
        from ..core.attachments import collapse

        messages = collapse(messages, refs)
    path = last_path()
    try:
        _replace(path, json.dumps(messages, ensure_ascii=False, indent=2) + "\n")
    except OSError as exc:
        warn(f"cannot keep the conversation for --continue in {path}: "
             f"{exc.strerror or exc} (keep_last_conversation: false turns this off)")


def _replace(path: Path, text: str) -> None:
    """Replace ``path`` by a new 0600 file, atomically (a rename). No fsync: this is a
    convenience kept on every `chat`, so it costs no disk flush; a crash at worst
    loses the last turn, never leaves half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
