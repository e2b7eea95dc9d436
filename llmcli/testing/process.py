"""Running the test server in a child process, as the benchmark and CLI tests do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Mapping, Sequence

READY_PREFIX = "listening on "
# The directory holding the llmcli package, so the child imports this very copy.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class ServerProcess:
    """A running ``python -m llmcli.testing`` child; stop it with ``stop()`` or ``with``."""

    __test__ = False

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.port = int(base_url.rsplit(":", 1)[1].split("/", 1)[0])

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url[: -len("/v1")] + "/" + path.lstrip("/")

    def stop(self, timeout: float = 10.0) -> int:
        """Send SIGTERM and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_line(stream: IO[str], timeout: float) -> str:
    """Read one line with a timeout (a thread, since pipes cannot time out portably)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def start_server_process(args: Sequence[str] = ("--port", "0"), *, python: str = sys.executable,
                         env: Mapping[str, str] | None = None,
                         timeout: float = 10.0) -> ServerProcess:
    """Start the server in a child process and wait for it to announce its URL.

    ``args`` are command-line flags (see ``python -m llmcli.testing --help``);
    the default binds a free port.  Raises ``RuntimeError`` if the child does
    not announce itself within ``timeout`` seconds.
    """
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, child_env.get("PYTHONPATH")) if p)
    process = subprocess.Popen([python, "-m", "llmcli.testing", *args], env=child_env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None   # stdout=PIPE
    line = _read_line(process.stdout, timeout)
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        raise RuntimeError(f"test server did not start (first line: {line!r})")
    return ServerProcess(process, line[len(READY_PREFIX):].strip())
