"""`llmcli stream` shows each token the moment it arrives, and groups a flood.

The latency check runs in lock step instead of against a clock: a small server in the
test sends one event, then waits until the reader of `llmcli stream`'s stdout pipe has
seen that delta before it sends the next. Output held back in a buffer for even one
event never reaches the reader, and the test fails at a generous deadline; nothing
depends on how fast or loaded the machine is.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
from typing import Iterator

import httpx
import pytest

from llmcli.core.client import Client
from llmcli.core.options import ClientOptions

from .conftest import ROOT

DEADLINE = 30.0          # seconds; reached only when a delta is held back (a failure)
TOKENS = ["alpha ", "beta ", "gamma ", "delta ", "omega"]


def chunk_event(delta: dict, finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class GatedServer:
    """Answers one streaming request; sends event k only once ``release(k)`` is called.
    Each event is its own HTTP chunk, as real API servers send them."""

    def __init__(self, events: list[bytes]) -> None:
        self.events = events
        self.gates = [threading.Event() for _ in events]
        self.error: BaseException | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def release(self, index: int) -> None:
        self.gates[index].set()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
            with conn:
                self._read_request(conn)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                for gate, event in zip(self.gates, self.events, strict=True):
                    if not gate.wait(DEADLINE):
                        return
                    conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
                conn.sendall(b"0\r\n\r\n")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self._listener.close()

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += conn.recv(65536)


class PipeReader:
    """Reads a child's stdout with a deadline per expected piece of text."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.seen = proc, b""

    def wait_for(self, text: bytes) -> bool:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while text not in self.seen:
            ready, _, _ = select.select([fd], [], [], DEADLINE)
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                return False     # deadline, or the child ended without writing it
            self.seen += chunk
        return True


@pytest.fixture
def gated() -> Iterator[GatedServer]:
    events = [chunk_event({"role": "assistant", "content": ""})]
    events += [chunk_event({"content": token}) for token in TOKENS]
    events += [chunk_event({}, "stop") + b"data: [DONE]\n\n"]
    server = GatedServer(events)
    yield server
    for gate in server.gates:
        gate.set()


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "ndjson"])
def test_each_delta_reaches_the_reader_before_the_next_is_sent(gated: GatedServer,
                                                               json_out: bool) -> None:
    env = dict(os.environ, OPENAI_BASE_URL=gated.base_url, OPENAI_API_KEY="sk-test",
               LLMCLI_MODEL="m")
    env.pop("PYTHONUNBUFFERED", None)          # llmcli's own flushing is under test
    args = ["stream", "--json", "hi"] if json_out else ["stream", "hi"]
    proc = subprocess.Popen([sys.executable, "-m", "llmcli", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    reader = PipeReader(proc)
    try:
        gated.release(0)                       # the role chunk: no text
        for index, token in enumerate(TOKENS, start=1):
            gated.release(index)
            expected = json.dumps(token).encode() if json_out else token.encode()
            assert reader.wait_for(expected), (
                f"delta {index} {token!r} was held back; stdout so far: {reader.seen!r}")
        gated.release(len(TOKENS) + 1)
        rest, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert gated.error is None
    output = reader.seen + rest
    if json_out:
        lines = [json.loads(line) for line in output.splitlines()]
        assert [o.get("content") for o in lines[:-1]] == TOKENS
        assert lines[-1]["type"] == "done" and lines[-1]["finish_reason"] == "stop"
    else:
        assert output == "".join(TOKENS).encode() + b"\n"


def test_a_flood_is_grouped_by_network_read() -> None:
    # Five hundred events that arrive in two reads make two batches, so the CLI writes
    # and flushes twice, not five hundred times.
    events = b"".join(chunk_event({"content": f"w{i} "}) for i in range(500))
    body = events + chunk_event({}, "stop") + b"data: [DONE]\n\n"
    half = len(body) // 2

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=iter([body[:half], body[half:]]))

    with Client(ClientOptions(base_url="http://llm.test/v1", api_key="sk-test"),
                transport=httpx.MockTransport(handler)) as client:
        batches = list(client.stream_chat({"model": "m", "messages": []}).batches())
    assert len(batches) == 2
    assert "".join(delta for batch in batches for delta in batch) == \
        "".join(f"w{i} " for i in range(500))
