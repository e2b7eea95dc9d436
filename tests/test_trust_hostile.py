"""Issue 11, point 5: hostile server content ends in one line and a documented exit
code (in batch: that item's error record, and the run goes on), and nothing a server
sends can drive the terminal through stderr."""

from __future__ import annotations

import json
import os

import pytest

from llmcli.core.errors import InvalidResponseError
from llmcli.core.sse import SSEDecoder

from .canned_server import JSON, SSE, CannedServer, completion
from .conftest import run_cli

DEEP = b"[" * 100_000 + b"]" * 100_000


def env_for(url: str) -> dict[str, str]:
    return dict(os.environ, OPENAI_BASE_URL=url, OPENAI_API_KEY="sk-hostile-0123456789",
                LLMCLI_MODEL="m")


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("llmcli: error: ") and "please report" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("status, body", [(200, DEEP), (500, DEEP),
                                          (200, b'{"choices": ' + DEEP + b"}")])
def test_deeply_nested_json_is_one_line_and_exit_5(status: int, body: bytes) -> None:
    with CannedServer(lambda _: (status, JSON, body)) as url:
        done = run_cli("chat", "hi", "--retries", "0", env=env_for(url))
    assert done.returncode == 5, done.stderr
    one_error_line(done.stderr)
    assert done.stdout == ""


def test_deeply_nested_stream_event_is_one_line_and_exit_5() -> None:
    body = b"data: " + DEEP + b"\n\n"
    with CannedServer(lambda _: (200, SSE, body)) as url:
        done = run_cli("stream", "hi", "--retries", "0", env=env_for(url))
    assert done.returncode == 5, done.stderr
    assert "nested too deeply" in one_error_line(done.stderr)


def test_a_huge_single_event_is_given_up_not_held() -> None:
    body = b"data: " + b"x" * (17 * 1024 * 1024)      # no line end, ever
    with CannedServer(lambda _: (200, SSE, body)) as url:
        done = run_cli("stream", "hi", "--retries", "0", env=env_for(url), timeout=60)
    assert done.returncode == 5, done.stderr
    assert "longer than" in one_error_line(done.stderr)


def test_sse_decoder_bounds_lines_and_events() -> None:
    decoder = SSEDecoder(limit=100)
    with pytest.raises(InvalidResponseError):
        decoder.feed(b"data: " + b"x" * 200)
    decoder = SSEDecoder(limit=100)
    decoder.feed(b"data: " + b"y" * 60 + b"\n")
    with pytest.raises(InvalidResponseError):
        decoder.feed(b"data: " + b"y" * 60 + b"\n")     # one event over two lines
    assert SSEDecoder(limit=100).feed(b"data: ok\n\n")[0].data == "ok"


def test_invalid_utf8_is_one_line_and_exit_5() -> None:
    body = completion("caf\udce9").replace(b"\\udce9", b"\xe9")     # a raw latin-1 byte
    headers = {"content-type": "application/json; charset=utf-8"}
    with CannedServer(lambda _: (200, headers, body)) as url:
        done = run_cli("chat", "hi", "--retries", "0", env=env_for(url))
    assert done.returncode == 5, done.stderr
    one_error_line(done.stderr)


def test_a_charset_claim_the_body_does_not_keep_is_read_by_its_bytes() -> None:
    headers = {"content-type": "application/json; charset=utf-16"}
    with CannedServer(lambda _: (200, headers, completion("café"))) as url:
        done = run_cli("chat", "hi", env=env_for(url))
    assert (done.returncode, done.stdout) == (0, "café\n"), done.stderr


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x9b"


def test_escape_sequences_from_the_server_never_reach_stderr_raw() -> None:
    body = json.dumps({"error": {"message": f"bad {ESCAPES} request", "type": "x"}}).encode()
    headers = dict(JSON, **{"x-request-id": "req\x1b[2Jid"})
    with CannedServer(lambda _: (400, headers, body)) as url:
        done = run_cli("chat", "hi", env=env_for(url))
    assert done.returncode == 5
    line = one_error_line(done.stderr)
    assert not any(ch in line for ch in "\x1b\x07\r\x9b")
    assert "\\x1b]0;pwned\\x07" in line and "req\\x1b[2Jid" in line


def test_the_reply_on_stdout_is_data_and_kept_as_sent() -> None:
    import subprocess
    import sys

    with CannedServer(lambda _: (200, JSON, completion(f"colour: {ESCAPES}"))) as url:
        done = subprocess.run([sys.executable, "-m", "llmcli", "chat", "hi"], env=env_for(url),
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
    assert done.returncode == 0 and done.stdout == f"colour: {ESCAPES}\n".encode()


def test_neutralize_keeps_text_and_shows_controls() -> None:
    from llmcli.core.sanitize import neutralize

    assert neutralize("a\tb\nc é 日本") == "a\tb\nc é 日本"
    assert neutralize("\x1b[2J\x00\x7f\x85") == "\\x1b[2J\\x00\\x7f\\x85"


def test_in_batch_a_hostile_answer_is_that_items_error_and_the_run_goes_on(tmp_path) -> None:
    def answer(request):
        prompt = request["messages"][-1]["content"]
        if prompt == "deep":
            return 200, JSON, DEEP
        if prompt == "bytes":
            return 200, JSON, b'{"choices": [\xff\xfe'
        return 200, JSON, completion(f"re: {prompt}")
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ndeep\ntwo\nbytes\nthree\n")
    out = tmp_path / "out.jsonl"
    with CannedServer(answer) as url:
        done = run_cli("batch", str(prompts), "-o", str(out), "--retries", "0", "-q",
                       env=env_for(url))
    assert done.returncode == 7, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "error", "ok", "error", "ok"]
    assert {records[1]["error"]["type"], records[3]["error"]["type"]} == {"invalid_response"}
    assert "please report" not in done.stderr
