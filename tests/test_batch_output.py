"""Batch output: record shapes, the ordered writer, and resume's repair rule."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from llmcli.batch import resume
from llmcli.batch.reader import InputError, Item
from llmcli.batch.records import BatchRecords, JsonlRecords, encode_line, fingerprint, shape_of
from llmcli.batch.writer import FdSink, RecordWriter
from llmcli.core.chat import ChatResult
from llmcli.core.errors import APITimeoutError, RateLimitError

RAW = {"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
       "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop"}],
       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
RESULT = ChatResult(content="hi", finish_reason="stop", usage=RAW["usage"], id="chatcmpl-1",
                    model="m", raw=RAW, request_id="req_1")
ITEM = Item(0, 3, "a", {"messages": []})


def rate_limited() -> RateLimitError:
    body = {"error": {"message": "slow down", "type": "requests", "param": None, "code": "rate"}}
    return RateLimitError("HTTP 429: slow down", status=429, type="requests", code="rate",
                          request_id="req_2", body=body)


def test_jsonl_records_have_every_key_always() -> None:
    ok = json.loads(JsonlRecords().ok(ITEM, RESULT, 2, 15))
    err = json.loads(JsonlRecords().error(ITEM, rate_limited(), 4, 99))
    bad = json.loads(JsonlRecords().error(Item(0, 7, "7", None, "line 7: no prompt"), None, 0, 0))
    assert list(ok) == list(err) == list(bad)
    assert ok == {"id": "a", "line": 3, "status": "ok", "content": "hi", "finish_reason": "stop",
                  "usage": RAW["usage"], "attempts": 2, "latency_ms": 15, "model": "m",
                  "request_id": "req_1", "cost": None, "parsed": None, "error": None,
                  "fingerprint": fingerprint({"messages": []})}
    priced = json.loads(JsonlRecords().ok(ITEM, RESULT, 1, 1, 0.00012, {"a": 1}))
    assert priced["cost"] == 0.00012 and priced["parsed"] == {"a": 1}
    assert err["status"] == "error" and err["content"] is None and err["attempts"] == 4
    assert err["error"]["type"] == "rate_limit" and err["error"]["status"] == 429
    assert bad["fingerprint"] is None and len(ok["fingerprint"]) == 16
    assert bad["error"] == {"type": "invalid_input", "message": "line 7: no prompt", "status": None,
                            "code": None, "retryable": False, "request_id": None}


def test_batch_records_follow_the_batch_api_output_shape() -> None:
    records = BatchRecords()
    ok = json.loads(records.ok(ITEM, RESULT, 1, 5))
    http = json.loads(records.error(ITEM, rate_limited(), 3, 5))
    net = json.loads(records.error(ITEM, APITimeoutError("timed out"), 3, 5))
    assert ok["custom_id"] == "a" and ok["error"] is None
    assert ok["response"] == {"status_code": 200, "request_id": "req_1", "body": RAW}
    assert http["response"]["status_code"] == 429 and http["error"] is None
    assert http["response"]["body"]["error"]["message"] == "slow down"
    assert net["response"] is None and net["error"] == {"code": "timeout", "message": "timed out"}
    assert len({ok["id"], http["id"], net["id"]}) == 3 and ok["id"].startswith("batch_req_")
    assert BatchRecords.classify(ok) == ("a", True) and BatchRecords.classify(http) == ("a", False)
    assert shape_of(ok) == "openai-batch" and shape_of({"x": 1}) is None


def test_a_lone_surrogate_still_makes_valid_utf8() -> None:
    line = encode_line({"content": "bad \ud800 char"})
    assert line.endswith(b"\n") and json.loads(line.decode("utf-8")) == {"content": "bad \ud800 char"}


class ListSink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


def test_ordered_writer_releases_records_in_input_order() -> None:
    sink = ListSink()
    writer = RecordWriter(sink, ordered=True, window=3)  # type: ignore[arg-type]
    writer.put(1, b"1\n")
    writer.put(2, b"2\n")
    assert sink.writes == [] and writer.buffered == 2
    assert writer.has_room(2) and not writer.has_room(3)
    writer.put(0, b"0\n")
    assert sink.writes == [b"0\n1\n2\n"] and writer.next == 3 and writer.has_room(5)
    writer.put(4, b"4\n")
    writer.drain()                        # stopping: gaps or not, everything goes out
    assert sink.writes[-1] == b"4\n" and writer.written == 4


def test_unordered_writer_writes_at_once() -> None:
    sink = ListSink()
    writer = RecordWriter(sink, ordered=False, window=1)  # type: ignore[arg-type]
    writer.put(5, b"5\n")
    writer.put(0, b"0\n")
    assert sink.writes == [b"5\n", b"0\n"] and writer.has_room(1000)


def test_wait_room_wakes_when_the_head_is_written() -> None:
    async def scenario() -> list[str]:
        writer = RecordWriter(ListSink(), ordered=True, window=1)  # type: ignore[arg-type]
        events = []

        async def second() -> None:
            await writer.wait_room(1)
            events.append("started 1")
        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        events.append("writing 0")
        writer.put(0, b"0\n")
        await task
        return events
    assert asyncio.run(scenario()) == ["writing 0", "started 1"]


def test_fd_sink_appends_whole_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "out.jsonl")
    for append in (False, True):
        sink = FdSink.open(path, append=append)
        sink.write(b'{"a":1}\n')
        sink.close()
    assert Path(path).read_bytes() == b'{"a":1}\n{"a":1}\n'


def rec(key: str, status: str = "ok") -> str:
    return json.dumps({"id": key, "status": status, "content": "x"})


def test_resume_keeps_ok_records_and_drops_errors_duplicates_and_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    lines = [rec("a"), rec("b", "error"), rec("c"), rec("a"), rec("b")]
    path.write_text("\n".join(lines) + '\n{"id": "d", "sta')
    state = resume.load(str(path), "jsonl")
    assert (state.ok, state.failed, state.duplicates, state.torn) == (3, 1, 1, 1)
    assert state.compacted and all(k in state.done for k in "abc") and "d" not in state.done
    kept = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert kept == ["a", "c", "b"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_resume_finishes_a_record_that_lost_only_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(rec("a") + "\n" + rec("b"))
    state = resume.load(str(path), "jsonl")
    assert state.ok == 2 and not state.compacted
    assert path.read_text() == rec("a") + "\n" + rec("b") + "\n"


def test_resume_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('{"name": "precious"}\n')
    with pytest.raises(InputError, match="did not write"):
        resume.load(str(path), "jsonl")
    assert path.read_text() == '{"name": "precious"}\n'


def test_resume_names_the_other_output_format(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(BatchRecords().ok(ITEM, RESULT, 1, 1))
    with pytest.raises(InputError, match="--output-format openai-batch"):
        resume.load(str(path), "jsonl")
    assert resume.load(str(path), "openai-batch").ok == 1


def test_resume_of_a_missing_or_empty_file_starts_fresh(tmp_path: Path) -> None:
    assert resume.load(str(tmp_path / "none.jsonl"), "jsonl").ok == 0
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    assert len(resume.load(str(empty), "jsonl").done) == 0
    assert os.path.getsize(empty) == 0


def test_progress_and_summary_text() -> None:
    from llmcli.batch.engine import Outcome, Stats
    from llmcli.batch.progress import progress_bar, status_line, summary, summary_lines

    stats = Stats(total=200, skipped=5)
    stats.done, stats.ok, stats.failed, stats.invalid, stats.retries = 50, 48, 2, 1, 7
    stats.prompt_tokens, stats.completion_tokens = 150_000, 30_000
    stats.errors = {"timeout": 1, "invalid_input": 1}
    stats.started, stats.finished = 0.0, 10.0
    assert progress_bar(stats).startswith("[######" + "." * 18 + "] 50/200  ok 48  failed 2  retries 7")
    assert status_line(stats) == ("batch: 50/200 (25%) ok 48  failed 2  retries 7  5 req/s  "
                                  "180k tok  ETA 0:30")
    data = summary(Outcome(stats, stopped="interrupted"), "out.jsonl")
    assert (data["inputs"], data["not_run"], data["items_per_second"]) == (205, 150, 5.0)
    assert list(data["errors"]) == ["invalid_input", "timeout"]
    assert summary_lines(data)[0] == ("batch: 48 ok, 2 failed (1 bad input lines), 150 not run "
                                      "of 200 (5 more were done already)")
    stats.cost, stats.unpriced = 1.23456, 3
    assert "180k tok  $1.2346  ETA" in status_line(stats)
    priced = summary(Outcome(stats), None)
    assert priced["cost"] == {"usd": 1.23456, "unpriced": 3}
    assert summary_lines(priced)[-1] == ("cost $1.2346 (3 replies of models with no known price "
                                         "are not in it)")
