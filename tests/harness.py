"""Run the CLI for a test: in this process by default, or as a real child process.

In-process, a run gets its own :class:`~llmcli.cli.env.Environment` (captured stdout
and stderr, the given stdin and variables, no terminal) and is handed to
``llmcli.cli.app.run(args, env)``, the same entry point ``python -m llmcli`` uses. Both
ways return a :class:`subprocess.CompletedProcess` with ``returncode`` and text
``stdout``/``stderr``, so a test reads the same either way.

Some things the CLI's own code does not see through its environment but third-party code
does: Click reads ``envvar=`` options from ``os.environ`` and httpx reads proxy and CA
variables there, so ``os.environ`` holds the run's variables while it lasts; the working
directory is the checkout, as for the child process. All of it is put back after.

``LLMCLI_TEST_PROCESS=1`` runs every test's CLI calls as child processes, to check that a
test passes both ways.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Optional, Union

ROOT = Path(__file__).resolve().parent.parent
ALWAYS_PROCESS = os.environ.get("LLMCLI_TEST_PROCESS") == "1"

Stdin = Union[int, IO[Any], None]


def run_cli(*args: str, env: Optional[Mapping[str, str]] = None,
            input: Optional[Union[str, bytes]] = None, timeout: float = 30,
            stdin: Stdin = None, process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``llmcli ARGS`` with ``env`` (default: this process's) and ``input`` on stdin
    (default: an empty stdin, /dev/null). ``process=True``: a real child process, for
    what only a process has (signals, a pty, inherited stdin, start-up cost).
    ``timeout`` holds for child processes only."""
    environ = dict(os.environ if env is None else env)
    if process or ALWAYS_PROCESS:
        return _in_child(list(args), environ, input, stdin, timeout)
    return _in_process(list(args), environ, input, stdin)


def _in_child(args: list[str], environ: dict[str, str], input: Optional[Union[str, bytes]],
              stdin: Stdin, timeout: float) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, Any] = {"input": input} if input is not None else {
        "stdin": subprocess.DEVNULL if stdin is None else stdin}
    if isinstance(input, bytes):
        kwargs["input"] = input.decode("utf-8")
    return subprocess.run([sys.executable, "-m", "llmcli", *args], capture_output=True,
                          text=True, env=environ, timeout=timeout, cwd=ROOT, **kwargs)


def _in_process(args: list[str], environ: dict[str, str], input: Optional[Union[str, bytes]],
                stdin: Stdin) -> subprocess.CompletedProcess[str]:
    from llmcli.cli.app import run
    from llmcli.cli.env import Environment

    out, err = io.BytesIO(), io.BytesIO()
    with _stdin_stream(input, stdin) as source:
        env = Environment(stdin=source, stdout=_text(out), stderr=_text(err), environ=environ,
                          argv=list(args))
        with _process_state(environ):
            try:
                code = run(args, env)
            except SystemExit as exc:   # nothing should exit, but a test must not end
                code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess([sys.executable, "-m", "llmcli", *args], int(code),
                                       _decoded(out), _decoded(err))


def _text(buffer: io.BytesIO) -> io.TextIOWrapper:
    """A text stream over ``buffer``, as a process's stdout is: UTF-8, written through
    at once so text and bytes written under it stay in order."""
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="replace", write_through=True)


def _decoded(buffer: io.BytesIO) -> str:
    """What ``subprocess.run(text=True)`` would give: decoded, universal newlines."""
    return buffer.getvalue().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


@contextmanager
def _stdin_stream(input: Optional[Union[str, bytes]], stdin: Stdin) -> Iterator[Optional[IO[Any]]]:
    """stdin for the run: ``input`` as bytes, a file descriptor or file given by the
    test (a pipe it writes to, say), or /dev/null."""
    if input is not None:
        data = input.encode("utf-8") if isinstance(input, str) else input
        yield io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        return
    if stdin is None or stdin == subprocess.DEVNULL:
        with open(os.devnull, encoding="utf-8") as devnull:
            yield devnull
        return
    if isinstance(stdin, int):
        with open(stdin, encoding="utf-8", closefd=False) as stream:
            yield stream
        return
    yield stdin


@contextmanager
def _process_state(environ: dict[str, str]) -> Iterator[None]:
    """``os.environ`` and the working directory as the child process would have them,
    restored after the run."""
    saved_environ, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)


def interruptible() -> None:
    """``preexec_fn`` for a child that a test sends SIGINT: a shell that ignores Ctrl-C
    (CI started as ``trap "" INT; ...``) passes the ignore down to every process it
    starts, and Python then never raises KeyboardInterrupt. A person at a terminal has
    the default, so the test restores it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
