"""`--conversation FILE`: a conversation kept in a JSON file, continued run after run.

The file holds a JSON list of messages in the API's own shape, exactly what was sent
plus the reply. It is only ever replaced whole, atomically: the new content goes to a
temporary file in the same directory, is flushed to disk, and is renamed over the old
one, so a run killed at any moment leaves either the old conversation or the new one,
never half of either.

One writer at a time: a turn holds the file's lock (llmcli/core/filelock.py) from
before it reads the conversation until it has saved the reply, so two turns at once
cannot both read the same history and have one overwrite the other. A second turn
waits up to :data:`LOCK_WAIT` seconds, then fails (exit 75) before sending anything.
A reply that was paid for but cannot be saved is never dropped: it goes to a file
beside the conversation, whose path is said on stderr (exit 74).
"""

from __future__ import annotations

import json
import os
import contextlib
import time
from pathlib import Path
from typing import Any, Iterator, Optional

Messages = list[dict[str, Any]]
LOCK_WAIT = 5.0     # seconds a turn waits for another turn on the same file


@contextlib.contextmanager
def conversation_lock(path: Optional[Path]) -> Iterator[None]:
    """Hold ``path``'s lock for a whole turn (or session); nothing for no file."""
    if path is None:
        yield
        return
    from ..core.filelock import holding

    check_writable(path)    # a folder that is not there fails as a usage error, first
    with holding(str(path), wait=LOCK_WAIT):
        yield


def save_turn(path: Path, messages: Messages, refs: Optional[dict[int, Any]] = None) -> None:
    """Save the conversation after a paid reply. If ``path`` cannot be written, the
    conversation goes to ``FILE.reply-<time>.json`` beside it (or in the temporary
    folder) and :class:`FileWriteError` says where."""
    from ..core.errors import FileWriteError

    try:
        save_conversation(path, messages, refs)
        return
    except OSError as exc:
        reason = exc.strerror or str(exc)
        errno = exc.errno
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for folder in (path.parent if str(path.parent) else Path("."), Path(_tmpdir())):
        spare = folder / f"{path.name}.reply-{stamp}.json"
        try:
            save_conversation(spare, messages, refs)
        except OSError:
            continue
        raise FileWriteError(f"cannot save the conversation to {path} ({reason}); it is "
                             f"saved, with this reply, in {spare}", path=str(path), errno=errno)
    raise FileWriteError(f"cannot save the conversation to {path} ({reason}), nor beside "
                         "it: the reply printed above is the only copy", path=str(path),
                         errno=errno)


def _tmpdir() -> str:
    import tempfile

    return tempfile.gettempdir()


def load_conversation(path: Path, refs: Optional[dict[int, Any]] = None) -> Messages:
    """The messages in ``path``; a missing or empty file is a new conversation.
    Attachments kept by reference are read again (``refs`` learns them)."""
    from . import common as c

    try:
        with open(path, "rb") as handle:   # not read whole here: it may be /dev/zero
            head = handle.read(4096)
        empty = len(head) < 4096 and not head.strip()
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
