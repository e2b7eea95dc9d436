"""The remote runner on fake time and a fake API: polling backoff, lookup before
create, liberal result parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmcli.batch.records import JsonlRecords
from llmcli.batch.reader import Item
from llmcli.batch.remote import results, state as st
from llmcli.batch.remote.runner import RemoteSpec, Runner
from llmcli.core.errors import APIConnectionError


class FakeAPI:
    """Batches that finish after ``polls`` retrieves; ``lost_create`` makes the first
    create fail after the server carried it out (a timeout on the answer)."""

    uploads = True
    has_metadata = True

    def __init__(self, polls: int = 5, lost_create: bool = False) -> None:
        self.polls, self.lost_create = polls, lost_create
        self.batches: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.retrieves = 0

    def upload(self, path: str, name: str) -> dict[str, Any]:
        self.files[name] = Path(path).read_bytes()
        return {"id": f"file-{len(self.files)}"}

    def create(self, file_id: str, endpoint: str, window: str, meta: dict[str, str]) -> dict[str, Any]:
        batch = {"id": f"batch_{len(self.batches)}", "status": "validating", "metadata": meta,
                 "created_at": 2e9, "input_file_id": file_id}
        self.batches.insert(0, batch)
        if self.lost_create:
            self.lost_create = False
            raise APIConnectionError("read timeout")
        return batch

    def each_batch(self):
        yield from self.batches

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        self.retrieves += 1
        batch = next(b for b in self.batches if b["id"] == batch_id)
        if self.retrieves >= self.polls:
            batch.update(status="expired", request_counts={"total": 2, "completed": 0, "failed": 2})
        else:
            batch["status"] = "in_progress"
        return batch

    def download(self, file_id: str, dest: str) -> int:
        raise AssertionError("no files to download")

    def delete_file(self, file_id: str) -> None:
        pass


def runner_for(tmp_path: Path, api: FakeAPI, sleeps: list[float], **spec: Any) -> Runner:
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n")
    runner = Runner(RemoteSpec(str(source), str(tmp_path / "out.jsonl"), **spec), api,
                    sleep=sleeps.append, wall=lambda: 2e9)
    runner.prepare()
    runner.open_output()
    return runner


def test_polling_backs_off_to_the_interval_on_fake_time(tmp_path: Path) -> None:
    sleeps: list[float] = []
    api = FakeAPI(polls=7)
    runner = runner_for(tmp_path, api, sleeps, poll_interval=5.0)
    runner.submit()
    runner.wait()
    runner.close()
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert api.retrieves == 7
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["id"], r["error"]["code"]) for r in out] == [("1", "batch_expired"), ("2", "batch_expired")]


def test_a_create_that_timed_out_is_found_not_repeated(tmp_path: Path) -> None:
    api = FakeAPI(lost_create=True)
    runner = runner_for(tmp_path, api, [])
    parts = runner.submit()
    assert len(api.batches) == 1 and parts[0].batch_id == "batch_0"


def test_resume_adopts_a_batch_created_but_not_recorded(tmp_path: Path) -> None:
    api = FakeAPI()
    runner = runner_for(tmp_path, api, [])
    runner.submit()
    runner.close()
    saved = st.load(runner.state_path)
    saved.parts[0].stage, saved.parts[0].batch_id = "creating", None   # as a kill leaves it
    st.save(saved, runner.state_path)
    again = Runner(RemoteSpec(runner.spec.input, runner.spec.output, resume=True), api,
                   sleep=lambda s: None)
    again.prepare()
    again.open_output()
    again.recover()
    assert again.submit() == [] and len(api.batches) == 1
    assert again.state.parts[0].batch_id == "batch_0"


def test_liberal_result_lines() -> None:
    convert = results.Converter(JsonlRecords(), "/v1/chat/completions")
    stats = results.MergeStats()
    body = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": None}
    as_string = json.dumps({"custom_id": "a", "response": {"status_code": 200,
                                                             "body": json.dumps(body)}})
    record = json.loads(convert.record(Item(0, 1, "a", None), json.loads(as_string),
                                       ("x", "y"), stats))
    assert record["status"] == "ok" and record["content"] == "hi" and record["usage"] is None
    no_code = json.dumps({"custom_id": "b", "response": None, "error": {"message": "gone"}})
    record = json.loads(convert.record(Item(1, 2, "b", None), json.loads(no_code),
                                       ("batch_expired", "expired"), stats))
    assert record["error"]["code"] == "batch_expired" and record["error"]["message"] == "gone"
    record = json.loads(convert.record(Item(2, 3, "c", None), None, ("m", "lost"), stats))
    assert record["status"] == "error" and "lost" in record["error"]["message"]
    assert (stats.ok, stats.failed) == (1, 2)


def test_state_is_written_atomically(tmp_path: Path) -> None:
    state = st.JobState.new(str(tmp_path / "in"), "jsonl", "/v1/chat/completions", "24h")
    state.parts.append(st.Part(number=1, ranges=[[1, 3], [5, 9]], lines=8, bytes=10))
    path = str(tmp_path / "o.remote.json")
    st.save(state, path)
    loaded = st.load(path)
    assert loaded == state and loaded.parts[0].holds(7) and not loaded.parts[0].holds(4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.remote.json"]


def test_results_out_of_order_and_in_two_files(tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    line = lambda key, status: json.dumps({"custom_id": key, "response": {"status_code": status}})  # noqa: E731
    out.write_text("\n".join([line("c", 200), "torn{", line("a", 200)]) + "\n")
    err.write_text(line("b", 500) + "\n" + line("a", 500) + "\n")
    stream = results.ResultStream([str(out), str(err)])
    got = [stream.take(k) for k in ("a", "b", "c", "d")]
    assert [g and g["response"]["status_code"] for g in got] == [200, 500, 200, None]


def test_a_result_line_nested_too_deeply_is_no_result(tmp_path: Path) -> None:
    """A line Python's JSON reader cannot descend is unreadable, like a torn one (it was
    an unexpected RecursionError that stopped the merge)."""
    out = tmp_path / "out"
    deep = '{"custom_id": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    ok = json.dumps({"custom_id": "b", "response": {"status_code": 200}})
    out.write_text(deep + "\n" + ok + "\n")
    stream = results.ResultStream([str(out)])
    assert stream.take("a") is None and stream.take("b")["response"]["status_code"] == 200
    nested_body = {"custom_id": "c", "response": {"status_code": 200,
                                                 "body": "[" * 100_000 + "]" * 100_000}}
    record = json.loads(results.Converter(JsonlRecords(), "/v1/chat/completions").record(
        Item(0, 1, "c", None), nested_body, ("x", "y"), results.MergeStats()))
    assert record["status"] == "error" and "no usable body" in record["error"]["message"]


def test_anthropic_results_nested_too_deeply_are_skipped(tmp_path: Path) -> None:
    from llmcli.batch.remote.anthropic import _rewrite

    source, dest = tmp_path / "raw", tmp_path / "out"
    good = {"custom_id": "b", "result": {"type": "succeeded", "message": {"content": []}}}
    source.write_text("[" * 100_000 + "]" * 100_000 + "\n" + json.dumps(good) + "\n")
    _rewrite(str(source), str(dest))
    assert [json.loads(x)["custom_id"] for x in dest.read_text().splitlines()] == ["b"]


def test_a_model_that_is_not_a_string_has_no_price() -> None:
    """A server's `model` as a number or an object: the record is ok, its cost null (it
    was an unexpected AttributeError / TypeError that stopped the merge)."""
    from llmcli.usage.prices import Price, PriceTable

    prices = PriceTable({"gpt-4o-mini": Price(0.15, 0.6)})
    convert = results.Converter(JsonlRecords(), "/v1/chat/completions", prices=prices)
    for model in (5, {"a": 1}, ["x"]):
        body = {"model": model, "choices": [{"message": {"content": "hi"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
        line = {"custom_id": "a", "response": {"status_code": 200, "body": body}}
        record = json.loads(convert.record(Item(0, 1, "a", None), line, ("x", "y"),
                                           results.MergeStats()))
        assert record["status"] == "ok" and record["cost"] is None


def test_a_failed_responses_body_keeps_its_error() -> None:
    """A /v1/responses result whose body is `status: failed`: the record has the
    response's own error (it was "the result has no usable body", code null)."""
    convert = results.Converter(JsonlRecords(), "/v1/responses")
    body = {"status": "failed", "error": {"code": "server_error", "message": "the model crashed"}}
    for given in (body, json.dumps(body)):
        line = {"custom_id": "a", "response": {"status_code": 200, "body": given}}
        record = json.loads(convert.record(Item(0, 1, "a", None), line, ("x", "y"),
                                           results.MergeStats()))
        assert record["status"] == "error" and record["error"]["code"] == "server_error"
        assert "the model crashed" in record["error"]["message"]
        assert "in stream" not in record["error"]["message"]
