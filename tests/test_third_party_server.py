"""chat and stream, text and --json, in every dialect such a server speaks, against an
OpenAI/Anthropic/Responses mock server that nobody on this project wrote
(`llm-mock-api` from PyPI, in the test extra): the project's own test server proves
llmcli faithful to its own reading of the APIs, this one to somebody else's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import run_cli

REPLY = "a reply from somebody else's server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def foreign_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server in a child process, its replies one fixed text in small SSE chunks."""
    port = _free_port()
    exe = Path(sys.executable).with_name("llm-mock-api")
    cwd = tmp_path_factory.mktemp("foreign")   # it looks for ./config.json there
    proc = subprocess.Popen([str(exe), "start", "-p", str(port), "-H", "127.0.0.1", "-l", "0",
                             "-c", "4", "-f", REPLY, "--log-level", "error"], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"llm-mock-api did not start: {proc.stderr.read()!r}")
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


DIALECTS = ["openai-chat", "openai-responses", "anthropic"]
KEYS = {"OPENAI_API_KEY": "sk-foreign-0123456789abcdef", "ANTHROPIC_API_KEY": "sk-ant-foreign-0123456789"}


def run(api: str, url: str, *words: str) -> subprocess.CompletedProcess[str]:
    """``llmcli --api API COMMAND ... --base-url URL``, with a key for each dialect."""
    return run_cli("--api", api, *words, "--base-url", url, "-m", "mock-model", "--no-stdin",
                   "hello", env=dict(os.environ, **KEYS))


@pytest.mark.parametrize("api", DIALECTS)
@pytest.mark.parametrize("command", ["chat", "stream"])
def test_text(foreign_url: str, api: str, command: str) -> None:
    done = run(api, foreign_url, command)
    assert (done.returncode, done.stdout, done.stderr) == (0, REPLY + "\n", "")


@pytest.mark.parametrize("api", DIALECTS)
def test_chat_json(foreign_url: str, api: str) -> None:
    done = run(api, foreign_url, "chat", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["content"] == REPLY and out["finish_reason"] == "stop"
    assert out["usage"]["prompt_tokens"] >= 0 and out["usage"]["completion_tokens"] >= 0
    assert out["raw"] and out["model"] == "mock-model"


@pytest.mark.parametrize("api", DIALECTS)
def test_stream_json(foreign_url: str, api: str) -> None:
    done = run(api, foreign_url, "stream", "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    deltas = [line["content"] for line in lines if line["type"] == "delta"]
    assert len(deltas) > 1 and "".join(deltas) == REPLY   # really streamed, in pieces
    assert lines[-1]["type"] == "done" and lines[-1]["finish_reason"] == "stop"
