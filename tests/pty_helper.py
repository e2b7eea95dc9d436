"""A real pseudo-terminal for end-to-end tests of what a person types: the child gets
the pty as its controlling terminal, so readline runs and Ctrl-C (a ``\\x03`` byte) is
turned into SIGINT by the terminal driver, exactly as at a keyboard."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from typing import Optional

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


def _take_terminal() -> None:
    """In the child, after setsid: the pty on stdin becomes the controlling terminal,
    so Ctrl-C reaches the program as SIGINT. ^C must work even when the tests run in a
    background job, whose children inherit SIGINT ignored (tests/harness.interruptible)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """A child process on a pty: ``send`` keystrokes, ``expect`` text on its screen."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Optional[str] = None) -> None:
        # openpty + subprocess, not pty.fork: os.fork in pytest's threaded process is
        # deprecated (a warning on 3.12+), subprocess's fork-exec is not.
        self.fd, child_fd = pty.openpty()
        # A wide screen, so that readline never scrolls a long line sideways.
        fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        try:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=child_fd, stdout=child_fd,
                                    stderr=child_fd, start_new_session=True,
                                    preexec_fn=_take_terminal)
        finally:
            os.close(child_fd)
        self.pid = proc.pid
        self.seen = b""       # everything read so far, escapes and \r stripped
        self.pos = 0          # where the next expect starts looking
        self.status: Optional[int] = None

    def send(self, text: str) -> None:
        """Type ``text`` (``\\r`` is Enter, ``\\x03`` Ctrl-C, ``\\x04`` Ctrl-D)."""
        os.write(self.fd, text.encode("utf-8"))

    def expect(self, text: str, timeout: float = 15) -> str:
        """Wait until ``text`` appears after the previous match; return what came
        before it. Fails with the screen so far when it does not come."""
        want = text.encode("utf-8")
        deadline = time.monotonic() + timeout
        while True:
            found = self.seen.find(want, self.pos)
            if found >= 0:
                before = self.seen[self.pos:found]
                self.pos = found + len(want)
                return before.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{text!r} never appeared; the screen:\n"
                                     + self.seen.decode("utf-8", "replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:   # EIO: the child closed the terminal
            return False
        self.seen += ANSI.sub(b"", data)
        return bool(data)

    def wait(self, timeout: float = 15) -> int:
        """The child's exit status (killed, and the test failed, if it hangs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        self.close()
        raise AssertionError("the process did not exit; the screen:\n"
                             + self.seen.decode("utf-8", "replace"))

    def close(self) -> None:
        """Kill the child if it still runs, and close the terminal."""
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.status = -9
        try:
            os.close(self.fd)
        except OSError:
            pass


def terminal_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """An environment for a predictable terminal: UTF-8 (readline needs the locale to
    take multibyte input) and a plain terminal type without bracketed paste."""
    base = dict(LC_ALL="C.UTF-8", LANG="C.UTF-8", TERM="dumb", INPUTRC=os.devnull,
                PYTHONIOENCODING="utf-8")
    return {**env, **base, **extra}


def llmcli_argv(*args: str) -> list[str]:
    """The argv that runs the real CLI with this interpreter."""
    return [sys.executable, "-m", "llmcli", *args]
