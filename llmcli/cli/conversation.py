"""`--conversation FILE`: a conversation kept in a JSON file, continued run after run.

The file holds a JSON list of messages in the API's own shape, exactly what was sent
plus the reply. It is only ever replaced whole, atomically: the new content goes to a
temporary file in the same directory, is flushed to disk, and is renamed over the old
one, so a run killed at any moment leaves either the old conversation or the new one,
never half of either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

Messages = list[dict[str, Any]]


def load_conversation(path: Path, refs: Optional[dict[int, Any]] = None) -> Messages:
    """The messages in ``path``; a missing or empty file is a new conversation.
    Attachments kept by reference are read again (``refs`` learns them)."""
    from . import common as c

    try:
        empty = not path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        empty = False   # load_messages reports it, in the same words as for --messages
    messages = [] if empty else c.load_messages(path, hint="--conversation")
    if '"attachment"' not in json.dumps(messages):
        return messages
    import typer

    from ..core.attachments import AttachmentError, expand

    try:
        return expand(messages, {} if refs is None else refs)
    except AttachmentError as exc:
        raise typer.BadParameter(f"{path}: {exc.message}", param_hint="--conversation") from None


def save_conversation(path: Path, messages: Messages,
                      refs: Optional[dict[int, Any]] = None) -> None:
    """Replace ``path`` with ``messages``, atomically (temp file, fsync, rename).
    Attachment parts in ``refs`` are written as references (path and SHA-256)."""
    import tempfile

    if refs:
        from ..core.attachments import collapse

        messages = collapse(messages, refs)
    data = json.dumps(messages, ensure_ascii=False, indent=2) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    _sync_dir(directory)


def check_writable(path: Path) -> None:
    """Refuse, before anything is sent, a FILE that could not be saved after the
    reply: its folder must exist and take new files (the temp file, the rename)."""
    import typer

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise typer.BadParameter(f"cannot save {path}: folder {directory} does not exist",
                                 param_hint="--conversation")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot save {path}: folder {directory} is not writable",
                                 param_hint="--conversation")
    if path.is_dir():
        raise typer.BadParameter(f"cannot save {path}: it is a folder",
                                 param_hint="--conversation")


def with_reply(sent: Messages, reply: str) -> Messages:
    """The conversation after a turn: what was sent, then the assistant's reply."""
    return [*sent, {"role": "assistant", "content": reply}]


def _keep_mode(path: Path, tmp: str) -> None:
    # mkstemp creates 0600; an existing file keeps its own mode, a new one gets 0600,
    # since conversations can hold anything the user typed.
    try:
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
    except OSError:
        pass


def _unlink(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _sync_dir(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    fd: Optional[int] = None
    try:
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
    except OSError:
        pass
    finally:
        if fd is not None:
            os.close(fd)
