"""Files a command reads and writes must be distinct files: compared by what they are
(device and inode), not by how they are named, so ``./out.jsonl``, ``out.jsonl``, a
symlink or a hard link to it are all the same file."""

from __future__ import annotations

import os
from typing import Optional

import click


def file_key(path: str) -> tuple[object, ...]:
    """What identifies a file: its device and inode when it exists, else its
    resolved path (two names of a file yet to be made resolve alike)."""
    try:
        found = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", found.st_dev, found.st_ino)


def check_distinct(named: list[tuple[str, Optional[str]]]) -> None:
    """Raise a usage error when two of the (option, path) pairs name one file;
    ``None`` and ``-`` (stdin/stdout) are left out."""
    seen: dict[tuple[object, ...], str] = {}
    for option, path in named:
        if not path or path == "-":
            continue
        key = file_key(path)
        if key in seen:
            raise click.UsageError(f"{option} {path} is the same file as {seen[key]}: "
                                   "each must be a file of its own")
        seen[key] = f"{option} {path}"
