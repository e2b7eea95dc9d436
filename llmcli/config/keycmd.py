"""Running ``api_key_cmd`` with a hard deadline.

``subprocess.run(..., capture_output=True, timeout=...)`` waits for the end of the
command's output, and a command that leaves a background child holding its stdout
(``pass show x & ``, a daemon a password manager starts) keeps the pipe open long after
it exited, past any timeout: the timeout then kills only the shell. Here the command
runs in its own process group, its output is read with a deadline, the first line is
taken as soon as the command has exited, and the whole group is killed on the way out.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from typing import Callable, Optional

from ..core.errors import APITimeoutError, ConfigError

OWN_TIMEOUT = 60.0      # seconds an api_key_cmd may take when --max-time allows more
AFTER_EXIT = 0.2        # seconds to wait for output still in flight once it has exited


def run_key_command(command: str, budget: Optional[float] = None,
                    clock: Callable[[], float] = time.monotonic) -> str:
    """The key: the first line ``command`` prints. Raises :class:`ConfigError` when it
    fails, prints nothing or takes over 60 s; :class:`APITimeoutError` when it outlives
    ``budget`` (what --max-time allows)."""
    limit = OWN_TIMEOUT if budget is None else min(OWN_TIMEOUT, budget)
    proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, finished = _read(proc, clock() + limit, clock)
    finally:
        _kill_group(proc)
    if not finished:
        if budget is not None and budget < OWN_TIMEOUT:
            raise APITimeoutError(f"gave up after the total time budget of {budget:g}s: "
                                  "api_key_cmd was still running")
        raise ConfigError(f"api_key_cmd took longer than {OWN_TIMEOUT:g}s", key="api_key_cmd")
    text = out.decode("utf-8", "replace").strip()
    key = text.splitlines()[0].strip() if text else ""
    if proc.returncode != 0 or not key:
        raise ConfigError(f"api_key_cmd failed (exit {proc.returncode}) or printed nothing",
                          key="api_key_cmd")
    return key


def _read(proc: "subprocess.Popen[bytes]", end: float,
          clock: Callable[[], float]) -> tuple[bytes, bool]:
    """(output, whether the command finished in time). Reading stops at EOF, or once
    the command has exited and its first line is in (or ``AFTER_EXIT`` has passed)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    chunks: list[bytes] = []
    exited_at: Optional[float] = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            now = clock()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and (b"\n" in b"".join(chunks)
                                          or now - exited_at > AFTER_EXIT):
                return b"".join(chunks), True
            if now >= end:
                return b"".join(chunks), False
            if selector.select(min(end - now, 0.05)):
                data = os.read(fd, 65536)
                if not data:     # EOF: every holder of the pipe has closed it
                    try:
                        proc.wait(max(end - clock(), 0.01))
                    except subprocess.TimeoutExpired:
                        return b"".join(chunks), False
                    return b"".join(chunks), True
                chunks.append(data)


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """Kill the command and anything it left behind, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass     # the group is gone already
    try:
        proc.wait(1)
    except subprocess.TimeoutExpired:
        pass
    if proc.stdout is not None:
        proc.stdout.close()
