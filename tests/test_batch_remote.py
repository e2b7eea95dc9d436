"""`llmcli batch --remote` end to end against the test server's Batch API: in-process
runs through the harness, and real child processes where a kill -9 is needed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

from llmcli.testing import MockOpenAIServer
from tests.conftest import API_KEY, run_cli

FAST = ("--poll-interval", "0.05")


@pytest.fixture(scope="module")
def bserver() -> Iterator[MockOpenAIServer]:
    """A server of this module's own: its batch knobs change per test."""
    with MockOpenAIServer(api_key=API_KEY) as srv:
        yield srv


@pytest.fixture
def env(bserver: MockOpenAIServer) -> dict[str, str]:
    bserver.batch_knobs(line_seconds=0.0, validating_seconds=0.0, finalizing_seconds=0.0,
                        fail_validation=False, expire_after=None, quirky=False)
    e = dict(os.environ)
    e.update(OPENAI_BASE_URL=bserver.base_url, OPENAI_API_KEY=API_KEY, LLMCLI_MODEL="test-model")
    return e


def created(server: MockOpenAIServer) -> int:
    return server.batch_knobs()["created"]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def prompts(tmp_path: Path, n: int, extra: tuple[str, ...] = ()) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("".join(f"question {i}\n" for i in range(1, n + 1)) + "".join(
        f"{line}\n" for line in extra))
    return path


def remote(env: dict[str, str], *args: str, **kw: Any):
    return run_cli("batch", *args, "--remote", *FAST, env=env, **kw)


# -- the test server, proven by the official SDK ----------------------------------
def test_sdk_files_and_batches(bserver: MockOpenAIServer) -> None:
    client = openai.OpenAI(base_url=bserver.base_url, api_key=API_KEY)
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}}
    data = (json.dumps(line) + "\n").encode()
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    assert client.files.retrieve(uploaded.id).bytes == len(data)
    assert client.files.content(uploaded.id).content == data
    ids = [client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                 completion_window="24h", metadata={"n": str(i)}).id
           for i in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[:0:-1] and page.has_more
    assert [b.id for b in client.batches.list(limit=2, after=ids[1]).data] == [ids[0]]
    batch = client.batches.retrieve(ids[2])
    for _ in range(200):
        if batch.status == "completed":
            break
        batch = client.batches.retrieve(ids[2])
    assert batch.request_counts.completed == 1 and batch.metadata == {"n": "2"}
    result = json.loads(client.files.content(batch.output_file_id).text)
    assert result["custom_id"] == "a" and result["response"]["body"]["choices"][0]["message"]["content"] == "echo: hi"
    assert client.files.delete(uploaded.id).deleted


def test_sdk_cancel(bserver: MockOpenAIServer) -> None:
    bserver.batch_knobs(line_seconds=0.5)
    try:
        client = openai.OpenAI(base_url=bserver.base_url, api_key=API_KEY)
        lines = b"".join(json.dumps({"custom_id": str(i), "method": "POST",
                                     "url": "/v1/chat/completions",
                                     "body": {"model": "test-model", "messages": [
                                         {"role": "user", "content": "x"}]}}).encode() + b"\n"
                         for i in range(20))
        f = client.files.create(file=("c.jsonl", io.BytesIO(lines)), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    finally:
        bserver.batch_knobs(line_seconds=0.0)


# -- end to end ------------------------------------------------------------------------
def test_remote_equals_local(env: dict[str, str], tmp_path: Path, bserver) -> None:
    source = prompts(tmp_path, 7, ("broken #fault:400",))
    before = created(bserver)
    done = remote(env, str(source), "-o", str(tmp_path / "remote.jsonl"), "--remote-max-lines", "3")
    assert done.returncode == 7, done.stderr
    assert created(bserver) - before == 3            # 8 lines in parts of 3
    local = run_cli("batch", str(source), "-o", str(tmp_path / "local.jsonl"), env=env)
    assert local.returncode == 7
    pick = lambda r: (r["id"], r["line"], r["status"], r["content"], r["finish_reason"],  # noqa: E731
                      (r["error"] or {}).get("type"))
    assert [pick(r) for r in records(tmp_path / "remote.jsonl")] == \
        [pick(r) for r in records(tmp_path / "local.jsonl")]
    assert records(tmp_path / "remote.jsonl")[-1]["error"]["status"] == 400


@pytest.mark.parametrize("api", ["openai-chat", "anthropic"])
def test_schemas_are_checked_as_local_batch_checks_them(env: dict[str, str], tmp_path: Path,
                                                        api: str) -> None:
    """A per-line schema: a reply that does not match is a failed record (exit 7), a
    matching one carries `parsed`, exactly as in a local run of the same input."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in [
        {"prompt": "bad #invalid-json", "schema": schema}, {"prompt": "good", "schema": schema},
        {"prompt": "plain"}]))
    env = dict(env, ANTHROPIC_API_KEY=API_KEY) if api == "anthropic" else env
    runs = {}
    for where, extra in (("remote", ("--remote", *FAST)), ("local", ())):
        out = tmp_path / f"{where}.jsonl"
        done = run_cli("--api", api, "batch", str(source), "-o", str(out), *extra,
                       "--base-url", env["OPENAI_BASE_URL"], env=env)
        assert done.returncode == 7, done.stderr
        runs[where] = [(r["id"], r["status"], r["parsed"], (r["error"] or {}).get("type"))
                       for r in records(out)]
    assert runs["remote"] == runs["local"]
    assert [r[1] for r in runs["remote"]] == ["error", "ok", "ok"]
    assert runs["remote"][0][3] == "schema_validation" and isinstance(runs["remote"][1][2], dict)


def test_remote_records_cost_the_batch_price(env: dict[str, str], tmp_path: Path,
                                             clean_env: Path) -> None:
    """`cost` in remote records is the local price less the Batch API discount."""
    clean_env.mkdir(parents=True, exist_ok=True)
    (clean_env / "config.yaml").write_text(
        "prices:\n  test-model: {input: 1000, output: 2000, batch_discount: 0.5}\n")
    source = prompts(tmp_path, 3)
    costs = {}
    for where, extra in (("remote", ("--remote", *FAST)), ("local", ())):
        out = tmp_path / f"{where}.jsonl"
        done = run_cli("batch", str(source), "-o", str(out), *extra, env=env)
        assert done.returncode == 0, done.stderr
        costs[where] = [r["cost"] for r in records(out)]
    assert all(isinstance(c, float) and c > 0 for c in costs["local"])
    assert costs["remote"] == [pytest.approx(c / 2) for c in costs["local"]]


def test_max_time_bounds_the_wait_and_resume_collects(env: dict[str, str], tmp_path: Path,
                                                      bserver) -> None:
    """--max-time bounds the whole command: a batch still running when it is spent is
    left running (exit 6, one line with the reattach command), and --resume collects."""
    bserver.batch_knobs(line_seconds=2.0)
    source, out = prompts(tmp_path, 2), tmp_path / "out.jsonl"
    done = remote(env, str(source), "-o", str(out), "--max-time", "0.5")
    assert done.returncode == 6, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "--max-time 0.5s spent waiting" in line and "--resume" in line
    bserver.batch_knobs(line_seconds=0.0)
    again = remote(env, str(source), "-o", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in records(out)] == ["ok", "ok"]


def test_detach_then_resume(env: dict[str, str], tmp_path: Path, bserver) -> None:
    source = prompts(tmp_path, 5)
    out = tmp_path / "out.jsonl"
    first = remote(env, str(source), "-o", str(out), "--detach", "--remote-max-lines", "2")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.split()) == 3 and all(b.startswith("batch_") for b in first.stdout.split())
    assert "--resume" in first.stderr
    status = remote(env, str(source), "-o", str(out), "--status")
    assert status.returncode == 0
    assert [p["batch_id"] for p in json.loads(status.stdout)["parts"]] == first.stdout.split()
    before = created(bserver)
    second = remote(env, str(source), "-o", str(out), "--resume")
    assert second.returncode == 0, second.stderr
    assert created(bserver) == before                 # nothing submitted twice
    assert [r["id"] for r in records(out)] == ["1", "2", "3", "4", "5"]
    assert all(r["status"] == "ok" for r in records(out))


@pytest.mark.parametrize("step", ["upload", "uploaded", "created", "polling", "download"])
def test_kill_at_each_step_then_resume(env: dict[str, str], tmp_path: Path, bserver,
                                       step: str) -> None:
    source = prompts(tmp_path, 7)
    out = tmp_path / "out.jsonl"
    before = created(bserver)
    killed = remote(dict(env, LLMCLI_REMOTE_KILL_AT=step), str(source), "-o", str(out),
                    "--remote-max-lines", "3", process=True)     # a real kill -9 needs a process
    assert killed.returncode == -9, killed.stderr
    again = remote(env, str(source), "-o", str(out), "--resume", "--remote-max-lines", "3")
    assert again.returncode == 0, again.stderr
    assert created(bserver) - before == 3             # one batch per part, never two
    got = records(out)
    assert sorted(int(r["id"]) for r in got) == list(range(1, 8))
    assert all(r["status"] == "ok" for r in got)
    state = json.loads((tmp_path / "out.jsonl.remote.json").read_text())
    assert len({p["batch_id"] for p in state["parts"] if p["stage"] == "merged"}) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl",
                                                          "out.jsonl.remote.json"]


def test_expiry_then_resume(env: dict[str, str], tmp_path: Path, bserver) -> None:
    source = prompts(tmp_path, 5)
    out = tmp_path / "out.jsonl"
    bserver.batch_knobs(expire_after=2)
    first = remote(env, str(source), "-o", str(out))
    assert first.returncode == 7
    got = records(out)
    assert [r["status"] for r in got] == ["ok", "ok", "error", "error", "error"]
    assert got[2]["error"]["code"] == "batch_expired" and got[2]["error"]["retryable"]
    bserver.batch_knobs(expire_after=None)
    second = remote(env, str(source), "-o", str(out), "--resume")
    assert second.returncode == 0, second.stderr
    assert sorted((r["id"], r["status"]) for r in records(out)) == [(str(i), "ok") for i in range(1, 6)]


def test_validation_failure(env: dict[str, str], tmp_path: Path, bserver) -> None:
    bserver.batch_knobs(fail_validation=True)
    done = remote(env, str(prompts(tmp_path, 3)), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 7
    got = records(tmp_path / "out.jsonl")
    assert len(got) == 3 and {r["error"]["code"] for r in got} == {"invalid_request"}
    assert "fail_validation" in got[0]["error"]["message"]


def test_cancel(env: dict[str, str], tmp_path: Path, bserver) -> None:
    bserver.batch_knobs(line_seconds=0.3)
    source, out = prompts(tmp_path, 20), tmp_path / "out.jsonl"
    assert remote(env, str(source), "-o", str(out), "--detach").returncode == 0
    cancel = remote(env, str(source), "-o", str(out), "--cancel")
    assert cancel.returncode == 0 and "cancel" in cancel.stdout
    bserver.batch_knobs(line_seconds=0.0)
    collect = remote(env, str(source), "-o", str(out), "--resume")
    assert collect.returncode == 7, collect.stderr     # the cancelled ones failed
    got = records(out)
    assert len(got) == 20
    assert any(r["error"] and r["error"]["code"] == "batch_cancelled" for r in got)


def test_quirky_server(env: dict[str, str], tmp_path: Path, bserver) -> None:
    bserver.batch_knobs(quirky=True, expire_after=3)
    source = prompts(tmp_path, 4, ("bad #fault:500",))
    done = remote(env, str(source), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 7, done.stderr
    got = records(tmp_path / "out.jsonl")
    assert [r["status"] for r in got] == ["ok", "ok", "ok", "error", "error"]
    assert got[0]["content"] == "echo: question 1" and got[0]["usage"] is None
    assert got[3]["error"]["code"] == "batch_expired"     # no code on the line: the status says


def test_embeddings_and_dry_run(env: dict[str, str], tmp_path: Path, bserver) -> None:
    source = prompts(tmp_path, 3)
    before = created(bserver)
    dry = remote(env, str(source), "-o", str(tmp_path / "e.jsonl"), "--dry-run",
                 "--endpoint", "/v1/embeddings", "--remote-max-lines", "2")
    assert dry.returncode == 0 and created(bserver) == before
    assert dry.stdout.splitlines()[0].split()[:3] == ["part", "lines", "bytes"]
    assert "2 part(s), 3 request(s)" in dry.stdout and not (tmp_path / "e.jsonl").exists()
    done = remote(env, str(source), "-o", str(tmp_path / "e.jsonl"), "--endpoint", "/v1/embeddings")
    assert done.returncode == 0, done.stderr
    vector = json.loads(records(tmp_path / "e.jsonl")[0]["content"])
    assert len(vector) == 8 and all(-1 <= x <= 1 for x in vector)


def test_batch_api_input_naming_responses_and_openai_batch_output(env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({
        "custom_id": f"r{i}", "method": "POST", "url": "/v1/responses",
        "body": {"model": "test-model", "input": f"say {i}"}}) + "\n" for i in range(3)))
    out = tmp_path / "out.jsonl"
    done = remote(env, str(source), "-o", str(out), "--output-format", "openai-batch")
    assert done.returncode == 0, done.stderr
    got = records(out)
    assert [r["custom_id"] for r in got] == ["r0", "r1", "r2"]
    assert got[1]["response"]["body"]["output"][0]["content"][0]["text"] == "echo: say 1"
    plain = tmp_path / "plain.jsonl"
    assert remote(env, str(source), "-o", str(plain)).returncode == 0
    first = records(plain)[0]
    assert (first["content"], first["finish_reason"], first["usage"]["prompt_tokens"]) == \
        ("echo: say 0", "stop", 2)


def test_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    source = prompts(tmp_path, 2)
    no_out = remote(env, str(source))
    assert no_out.returncode == 2 and "-o FILE" in no_out.stderr
    status = remote(env, str(source), "-o", str(tmp_path / "none.jsonl"), "--status")
    assert status.returncode == 2 and "no remote job" in status.stderr
    out = tmp_path / "o.jsonl"
    assert remote(env, str(source), "-o", str(out), "--detach").returncode == 0
    again = remote(env, str(source), "-o", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr
    (tmp_path / "x").mkdir()
    other = prompts(tmp_path / "x", 2)
    wrong = remote(env, str(other), "-o", str(out), "--resume")
    assert wrong.returncode == 2 and "same input" in wrong.stderr



@pytest.mark.parametrize("edit", [
    lambda s, p: p.update(ranges="x"), lambda s, p: p.update(ranges=[[1, "a"]]),
    lambda s, p: p.update(lines=None), lambda s, p: p.update(offset=-5),
    lambda s, p: p.update(counts="x"), lambda s, p: s.pop("job_id"),
    lambda s, p: s.update(extra=1), lambda s, p: p.update(stage="weird")])
def test_a_state_file_edited_by_hand_is_one_line_exit_2(env: dict[str, str], tmp_path: Path,
                                                        edit: Any) -> None:
    """Each but the unknown stage was an 'unexpected TypeError/ValueError/OSError ...
    please report' on --resume; now every field is checked as the state is read."""
    source, out = prompts(tmp_path, 2), tmp_path / "o.jsonl"
    assert remote(env, str(source), "-o", str(out), "--detach").returncode == 0
    state_path = tmp_path / "o.jsonl.remote.json"
    state = json.loads(state_path.read_text())
    edit(state, state["parts"][0])
    state_path.write_text(json.dumps(state))
    done = remote(env, str(source), "-o", str(out), "--resume")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "not a remote job state" in done.stderr

# -- Anthropic Message Batches -------------------------------------------------------
def test_sdk_anthropic_message_batches(bserver: MockOpenAIServer) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=bserver.base_url[:-len("/v1")], api_key=API_KEY)
    requests = [{"custom_id": f"r{i}", "params": {
        "model": "test-model", "max_tokens": 20,
        "messages": [{"role": "user", "content": f"hi {i}" + (" #fault:500" if i == 1 else "")}]}}
        for i in range(3)]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
    for _ in range(200):
        batch = client.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (2, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["r0"].type == "succeeded" and results["r0"].message.content[0].text == "echo: hi 0"
    assert results["r1"].type == "errored"
    assert batch.id in [b.id for b in client.messages.batches.list(limit=3)]
    assert client.messages.batches.cancel(batch.id).processing_status == "ended"


def anthropic_remote(env: dict[str, str], *args: str, **kw: Any):
    e = dict(env, ANTHROPIC_API_KEY=API_KEY)
    return run_cli("--api", "anthropic", "batch", *args, "--remote", *FAST, "--base-url",
                   env["OPENAI_BASE_URL"], env=e, **kw)


@pytest.mark.parametrize("step", [None, "created"])
def test_anthropic_remote_and_a_kill_after_create(env: dict[str, str], tmp_path: Path,
                                                  bserver, step: str) -> None:
    source, out = prompts(tmp_path, 5, ("bad #fault:500",)), tmp_path / "out.jsonl"
    before = created(bserver)
    if step:
        killed = anthropic_remote(dict(env, LLMCLI_REMOTE_KILL_AT=step), str(source), "-o",
                                  str(out), "--remote-max-lines", "4", process=True)
        assert killed.returncode == -9, killed.stderr
    done = anthropic_remote(env, str(source), "-o", str(out), "--remote-max-lines", "4",
                            *(["--resume"] if step else []))
    assert done.returncode == 7, done.stderr
    assert created(bserver) - before == 2                 # found by time and size: no twin
    got = records(out)
    assert [r["id"] for r in got] == [str(i) for i in range(1, 7)]
    assert [r["status"] for r in got] == ["ok"] * 5 + ["error"]
    assert got[0]["content"] == "echo: question 1" and got[5]["error"]["status"] == 500


def test_anthropic_expiry_then_resume(env: dict[str, str], tmp_path: Path, bserver) -> None:
    source, out = prompts(tmp_path, 3), tmp_path / "out.jsonl"
    bserver.batch_knobs(expire_after=1)
    assert anthropic_remote(env, str(source), "-o", str(out)).returncode == 7
    assert [r["error"] and r["error"]["code"] for r in records(out)] == \
        [None, "batch_expired", "batch_expired"]
    bserver.batch_knobs(expire_after=None)
    assert anthropic_remote(env, str(source), "-o", str(out), "--resume").returncode == 0
    assert sorted(r["id"] for r in records(out) if r["status"] == "ok") == ["1", "2", "3"]


# -- listing, progress, Ctrl-C -----------------------------------------------------
def test_batches_lists_jobs_and_parts(env: dict[str, str], tmp_path: Path, bserver) -> None:
    source, out = prompts(tmp_path, 3), tmp_path / "out.jsonl"
    submitted = remote(env, str(source), "-o", str(out), "--detach", "--remote-max-lines", "2")
    job = json.loads((tmp_path / "out.jsonl.remote.json").read_text())["job_id"]
    listed = run_cli("batches", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    mine = [r for r in json.loads(listed.stdout) if r["job"] == job]
    assert sorted((r["part"], r["batch"]) for r in mine) == \
        list(zip(["1", "2"], submitted.stdout.split()))
    table = run_cli("batches", env=env).stdout.splitlines()
    assert table[0].split() == ["job", "part", "batch", "status", "done", "total", "created"]
    assert any(job in line for line in table[1:])


def test_progress_lines_when_stderr_is_not_a_terminal(env: dict[str, str], tmp_path: Path,
                                                      bserver) -> None:
    bserver.batch_knobs(line_seconds=0.02, validating_seconds=0.2, finalizing_seconds=0.3)
    done = remote(env, str(prompts(tmp_path, 5)), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0
    status = [line for line in done.stderr.splitlines() if line.startswith("llmcli: batch --remote: ")
              and "requests" in line]
    assert status and "/5 requests" in status[0] and "validating 1" in status[0]
    assert [r["status"] for r in records(tmp_path / "out.jsonl")] == ["ok"] * 5
    assert "\r" not in done.stderr


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_while_waiting_detaches(env: dict[str, str], tmp_path: Path, bserver,
                                         signame: str) -> None:
    import signal
    import subprocess
    import sys
    import time

    bserver.batch_knobs(line_seconds=0.2)
    source, out = prompts(tmp_path, 6), tmp_path / "out.jsonl"
    child = subprocess.Popen([sys.executable, "-m", "llmcli", "batch", str(source), "-o", str(out),
                              "--remote", *FAST], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    state = tmp_path / "out.jsonl.remote.json"
    for _ in range(200):      # wait until the batch exists, then interrupt the waiting
        if state.exists() and '"submitted"' in state.read_text():
            break
        time.sleep(0.05)
    child.send_signal(getattr(signal, signame))
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "detached" in err and "--resume" in err
    batch_id = json.loads(state.read_text())["parts"][0]["batch_id"]
    bserver.batch_knobs(line_seconds=0.0)
    before = created(bserver)
    again = remote(env, str(source), "-o", str(out), "--resume")
    assert again.returncode == 0 and created(bserver) == before
    assert json.loads(state.read_text())["parts"][0]["batch_id"] == batch_id
    assert len(records(out)) == 6


def test_resume_in_another_output_format_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    source, out = prompts(tmp_path, 2), tmp_path / "out.jsonl"
    assert remote(env, str(source), "-o", str(out), "--detach").returncode == 0
    other = remote(env, str(source), "-o", str(out), "--resume", "--output-format", "openai-batch")
    assert other.returncode == 2 and "--output-format jsonl" in other.stderr


def test_gemini_has_no_batch_engine(env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("--api", "gemini", "batch", str(prompts(tmp_path, 1)), "-o",
                   str(tmp_path / "o.jsonl"), "--remote", "--base-url", env["OPENAI_BASE_URL"],
                   env=dict(env, GEMINI_API_KEY=API_KEY))
    assert done.returncode == 3 and "no batch engine" in done.stderr


def test_a_bar_on_a_terminal_and_ctrl_c_detaches(env: dict[str, str], tmp_path: Path,
                                                 bserver) -> None:
    from .conftest import ROOT
    from .pty_helper import Terminal, llmcli_argv, terminal_env

    bserver.batch_knobs(line_seconds=0.3)
    source, out = prompts(tmp_path, 8), tmp_path / "out.jsonl"
    term = Terminal(llmcli_argv("batch", str(source), "-o", str(out), "--remote", *FAST),
                    terminal_env(env), cwd=str(ROOT))
    try:
        term.expect("[")                        # the bar, redrawn in place
        term.expect("/8 requests")
        term.send("\x03")                       # Ctrl-C at the keyboard
        term.expect("detached")
        assert term.wait() == 130
    finally:
        term.close()
        bserver.batch_knobs(line_seconds=0.0)
    assert "llmcli: batch --remote:" not in term.seen.decode()   # no log lines on a tty
    again = remote(env, str(source), "-o", str(out), "--resume")
    assert again.returncode == 0 and len(records(out)) == 8


def test_list_pages_that_loop_end(env: dict[str, str], tmp_path: Path) -> None:
    """A server whose `after` pages lead back to batches already listed, `has_more`
    always true: `llmcli batches` (and the lookup before a create) lists each batch once
    and ends; it looped for ever."""
    import http.server
    import threading
    import time as clock
    from urllib.parse import parse_qs, urlsplit

    pages = {None: ["A", "B"], "B": ["C", "A"], "A": ["B", "C"], "C": ["A", "B"]}
    tags = [{"llmcli_job": "j", "llmcli_part": "1"}]   # emptied: batches of no llmcli job

    class Loop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            after = parse_qs(urlsplit(self.path).query).get("after", [None])[0]
            data = [{"id": i, "status": "completed", "created_at": int(clock.time()),
                     "metadata": tags[0]}
                    for i in pages.get(after, [])]
            body = json.dumps({"object": "list", "data": data, "has_more": True}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Loop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        e = dict(env, OPENAI_BASE_URL=f"http://127.0.0.1:{server.server_port}/v1")
        # a child process: before the fix this hung, and only a process can be timed out
        listed = run_cli("batches", "--json", env=e, timeout=20, process=True)
        assert listed.returncode == 0, listed.stderr
        assert sorted(r["batch"] for r in json.loads(listed.stdout)) == ["A", "B", "C"]
        tags[0] = {}   # nothing of a job: the walk went round for ever (a hang)
        listed = run_cli("batches", "--json", env=e, timeout=20, process=True)
        assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    finally:
        server.shutdown()
        server.server_close()


def test_max_time_bounds_a_stalled_download(env: dict[str, str], tmp_path: Path) -> None:
    """A server that stops sending the output file half-way: --max-time still ends the
    command, with the reattach line and exit 6 (it waited for the 600 s read timeout)."""
    import http.server
    import threading
    import time as clock

    stop = threading.Event()

    class Stall(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _json(self, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.do_GET()

        def do_GET(self) -> None:
            if self.path.endswith("/content"):   # headers and one byte, then nothing
                self.send_response(200)
                self.send_header("content-length", "1000")
                self.end_headers()
                self.wfile.write(b"{")
                self.wfile.flush()
                stop.wait(30)
            elif "/files" in self.path:
                self._json({"id": "file-1", "object": "file"})
            else:
                self._json({"id": "batch-1", "object": "batch", "status": "completed",
                            "created_at": int(clock.time()), "output_file_id": "file-out",
                            "request_counts": {"total": 1, "completed": 1, "failed": 0}})

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        e = dict(env, OPENAI_BASE_URL=f"http://127.0.0.1:{server.server_port}/v1")
        started = clock.monotonic()
        # a child process: before the fix this hung, and only a process can be timed out
        done = run_cli("batch", str(prompts(tmp_path, 1)), "-o", str(tmp_path / "o.jsonl"),
                       "--remote", *FAST, "--max-time", "2", env=e, timeout=25, process=True)
        assert done.returncode == 6, done.stderr
        assert clock.monotonic() - started < 15
        assert "--max-time 2s" in done.stderr and "--resume" in done.stderr
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_resume_with_another_engine_is_refused(env: dict[str, str], tmp_path: Path,
                                               bserver) -> None:
    """A job of the OpenAI Batch API resumed with --api anthropic (or the reverse) asked
    the other engine for batch ids it never had (an HTTP 404, or a wrong status)."""
    source, out = prompts(tmp_path, 2), tmp_path / "o.jsonl"
    assert remote(env, str(source), "-o", str(out), "--detach").returncode == 0
    for extra in ("--resume", "--status"):
        done = anthropic_remote(env, str(source), "-o", str(out), extra)
        assert done.returncode == 2, done.stderr
        assert "runs on the OpenAI Batch API" in done.stderr and done.stderr.count("\n") == 1
    assert remote(env, str(source), "-o", str(out), "--resume").returncode == 0
    other = tmp_path / "a.jsonl"
    assert anthropic_remote(env, str(source), "-o", str(other), "--detach").returncode == 0
    done = remote(env, str(source), "-o", str(other), "--resume")
    assert done.returncode == 2 and "Anthropic Message Batches" in done.stderr
