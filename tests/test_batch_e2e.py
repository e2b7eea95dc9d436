"""`llmcli batch` end to end: the real process against the test server, faults injected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import ROOT, run_cli
from .harness import interruptible


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def tag() -> str:
    """Makes prompts unique per test: the server counts directive faults per body."""
    return uuid.uuid4().hex[:8]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmcli", "batch", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {count} lines")


def test_faults_end_in_exactly_one_record_per_input_in_input_order(cli: Any, tmp_path: Path, tag: str) -> None:
    rows = [
        {"id": "limited", "prompt": f"{tag} a #fault:429@ms:50*2"},
        {"id": "flaky", "prompt": f"{tag} b #fault:500*1"},
        {"id": "dropped", "prompt": f"{tag} c #fault:drop*1"},
        {"id": "hung", "prompt": f"{tag} d #fault:hang"},
        {"id": "broken", "prompt": f"{tag} e #fault:503"},
        {"id": "nomodel", "prompt": f"{tag} f", "model": "no-such-model"},
    ] + [{"id": f"n{n}", "prompt": f"{tag} plain {n}"} for n in range(30)]
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(rows[:3]) + "{not json\n" + jsonl(rows[3:]) + '{"id": "empty"}\n')
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    done = cli("batch", str(source), "-o", str(out), "-c", "8", "--timeout", "0.3",
               "--retries", "2", "--summary-json", str(summary))
    assert done.returncode == 7, done.stderr
    got = records(out)
    expected_ids = ["limited", "flaky", "dropped", "4"] + [r["id"] for r in rows[3:]] + ["empty"]
    assert [r["id"] for r in got] == expected_ids
    by_id = {r["id"]: r for r in got}
    assert (by_id["limited"]["status"], by_id["limited"]["attempts"]) == ("ok", 3)
    assert by_id["flaky"]["attempts"] == by_id["dropped"]["attempts"] == 2
    assert by_id["n7"]["content"] == f"echo: {tag} plain 7"
    assert by_id["hung"]["error"]["type"] == "timeout" and by_id["hung"]["attempts"] == 3
    assert by_id["broken"]["error"]["status"] == 503
    assert by_id["nomodel"]["error"]["type"] == "not_found" and by_id["nomodel"]["attempts"] == 1
    assert by_id["4"]["error"]["type"] == by_id["empty"]["error"]["type"] == "invalid_input"
    data = json.loads(summary.read_text())
    assert (data["ok"], data["failed"], data["invalid_input"], data["exit_code"]) == (33, 5, 2, 7)
    assert data["rate_limited"] == 2 and data["retries"] >= 2 + 1 + 1 + 2 + 2
    assert done.stderr.count("no-such-model") == 1        # said once, on stderr
    assert "--resume" in done.stderr and done.stdout == ""


def test_stdin_plain_text_to_stdout_exits_0(cli: Any, tag: str) -> None:
    prompts = [f"{tag} line {n}" for n in range(40)]
    done = cli("batch", "-", "-c", "4", "-q", "-s", "be brief", input="\n".join(prompts) + "\n")
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in got] == [str(n) for n in range(1, 41)]
    assert [r["content"] for r in got] == [f"echo: {p}" for p in prompts]
    assert done.stderr == ""


def test_unordered_writes_every_record_once(cli: Any, tmp_path: Path, tag: str) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{tag} {n} #latency:{(n * 7) % 30}\n" for n in range(60)))
    done = cli("batch", str(source), "--unordered", "-c", "16", "-q")
    assert done.returncode == 0, done.stderr
    ids = [json.loads(line)["id"] for line in done.stdout.splitlines()]
    assert sorted(ids, key=int) == [str(n) for n in range(1, 61)] and len(set(ids)) == 60


def test_batch_api_format_round_trips(cli: Any, tmp_path: Path, tag: str) -> None:
    requests = [{"custom_id": f"req-{n}", "method": "POST", "url": "/v1/chat/completions",
                 "body": {"model": "test-model", "max_tokens": 3,
                          "messages": [{"role": "user", "content": f"{tag} say {n} now ok"}]}}
                for n in range(12)]
    requests.append({"custom_id": "req-bad", "method": "POST", "url": "/v1/chat/completions",
                     "body": {"model": "test-model", "messages": [
                         {"role": "user", "content": f"{tag} #fault:400"}]}})
    source, out = tmp_path / "batch_input.jsonl", tmp_path / "batch_output.jsonl"
    source.write_text(jsonl(requests))
    done = cli("batch", str(source), "-o", str(out), "--output-format", "openai-batch",
               "--retries", "0", "-q")
    assert done.returncode == 7, done.stderr
    lines = records(out)
    assert [line["custom_id"] for line in lines] == [r["custom_id"] for r in requests]
    for line in lines[:-1]:
        assert line["error"] is None and line["response"]["status_code"] == 200
        completion = openai.types.chat.ChatCompletion.model_validate(line["response"]["body"])
        assert completion.choices[0].finish_reason == "length"   # max_tokens was sent
    assert lines[-1]["response"]["status_code"] == 400
    assert lines[-1]["response"]["body"]["error"]["type"] == "invalid_request_error"
    again = cli("batch", str(source), "-o", str(out), "--output-format", "openai-batch",
                "--retries", "0", "--resume", "-q")
    assert again.returncode == 7     # the 400 is retried, and fails again
    assert len(records(out)) == len(requests) and records(out)[-1]["custom_id"] == "req-bad"


def test_resume_after_sigkill_completes_the_set(api_env: dict[str, str], tmp_path: Path, tag: str) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("".join(f"{tag} {n} #latency:20\n" for n in range(150)))
    process = start([str(source), "-o", str(out), "-c", "4", "-q"], api_env)
    wait_for_lines(out, 20, process)
    process.kill()
    process.communicate()
    first = out.read_bytes()
    assert first.endswith(b"\n") and 20 <= first.count(b"\n") < 150
    with out.open("ab") as f:               # what a power cut could leave behind
        f.write(b'{"id": "151", "status": "o')
    done = run_cli("batch", str(source), "-o", str(out), "-c", "32", "--resume", env=api_env)
    assert done.returncode == 0, done.stderr
    got = records(out)
    assert sorted(int(r["id"]) for r in got) == list(range(1, 151))
    assert all(r["status"] == "ok" for r in got)
    assert out.read_bytes().startswith(first)     # what was written stays, in place
    assert "1 torn line" in done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_writes_what_finished_prints_the_resume_command_and_exits_130(
        api_env: dict[str, str], tmp_path: Path, tag: str, signum: int) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("".join(f"{tag} {n} #latency:30\n" for n in range(150)))
    process = start([str(source), "-o", str(out), "-c", "4"], api_env)
    wait_for_lines(out, 8, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    partial = records(out)
    assert 8 <= len(partial) < 150 and len({r["id"] for r in partial}) == len(partial)
    assert f"{150 - len(partial)} item(s) not run" in stderr
    assert stderr.count("interrupted") == 1, stderr       # the resume line says it, once
    command = stderr.split("to finish the run: ", 1)[1].splitlines()[0]
    assert command.startswith("llmcli batch ") and command.endswith("--resume")
    done = run_cli(*command.split()[1:], env=api_env)
    assert done.returncode == 0, done.stderr
    assert sorted(int(r["id"]) for r in records(out)) == list(range(1, 151))


def test_resume_retries_failed_records_and_keeps_one_per_input(cli: Any, tmp_path: Path, tag: str) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text(f"{tag} fine\n{tag} twice #fault:500*2\n{tag} also fine\n")
    first = cli("batch", str(source), "-o", str(out), "--retries", "0", "-q")
    assert first.returncode == 7
    assert [r["status"] for r in records(out)] == ["ok", "error", "ok"]
    second = cli("batch", str(source), "-o", str(out), "--retries", "1", "--resume")
    assert second.returncode == 0, second.stderr
    got = records(out)
    assert [(r["id"], r["status"]) for r in got] == [("1", "ok"), ("3", "ok"), ("2", "ok")]
    assert "dropped 1 error record(s)" in second.stderr
    assert "2 more were done already" in second.stderr


def test_input_problems_are_usage_errors_and_nothing_is_sent(cli: Any, server: Any, tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(jsonl([{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]))
    before = server.stats()["total_requests"]
    dup = cli("batch", str(source), "-o", str(out))
    assert dup.returncode == 2 and "'a' on lines 1, 2" in dup.stderr
    assert not out.exists() and server.stats()["total_requests"] == before
    out.write_text("precious\n")
    source.write_text("one prompt\n")
    exists = cli("batch", str(source), "-o", str(out))
    assert exists.returncode == 2 and "--resume" in exists.stderr and "--force" in exists.stderr
    assert out.read_text() == "precious\n"
    assert cli("batch", str(source), "--resume").returncode == 2     # resume needs -o


def test_fail_fast_on_a_bad_key_exits_with_the_auth_code(api_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"prompt {n}\n" for n in range(500)))
    env = dict(api_env, OPENAI_API_KEY="sk-wrong-key-0000000000")
    done = run_cli("batch", str(source), "-o", str(tmp_path / "o.jsonl"), "-c", "2",
                   "--fail-fast", env=env)
    assert done.returncode == 4, done.stderr
    assert done.stderr.count("Incorrect API key") == 1        # once, as the run's error
    assert "sk-wrong-key-0000000000" not in done.stderr
    assert len(records(tmp_path / "o.jsonl")) < 10
    assert os.path.getsize(tmp_path / "o.jsonl") > 0


def test_a_retry_after_too_long_to_honour_does_not_stall_the_run(cli: Any, tmp_path: Path, tag: str) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"prompt": f"{tag} x #fault:429@3600*1"}]
    rows += [{"prompt": f"{tag} {n}"} for n in range(20)]
    source.write_text(jsonl(rows))
    started = time.monotonic()
    done = cli("batch", "-c", "1", str(source), "-o", str(out), "-q", timeout=20)
    assert done.returncode == 7, done.stderr
    assert time.monotonic() - started < 10
    got = records(out)
    assert got[0]["error"]["type"] == "rate_limit" and got[0]["attempts"] == 1
    assert [r["status"] for r in got[1:]] == ["ok"] * 20


def test_max_time_starts_when_the_rate_limit_lets_an_item_go(cli: Any, server: Any, tmp_path: Path, tag: str) -> None:
    source = tmp_path / "six.txt"
    source.write_text("".join(f"{tag} {n}\n" for n in range(6)))   # 120 rpm: one per 0.5 s
    before = server.stats()["total_requests"]
    done = cli("batch", "--rpm", "120", "-c", "6", "--max-time", "1", str(source), "-q")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["ok"] * 6
    assert server.stats()["total_requests"] - before == 6


@pytest.mark.parametrize("base_url", ["localhost:8080/v1", "ftp://x/v1"])
def test_a_bad_base_url_is_a_config_error_before_anything_is_sent(cli: Any, tmp_path: Path,
                                                                  base_url: str) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("one\ntwo\n")
    out.write_text("kept\n")
    done = cli("batch", str(source), "-o", str(out), "--force", "--base-url", base_url)
    assert done.returncode == 3, done.stderr
    assert "base_url" in done.stderr and done.stdout == ""
    assert out.read_text() == "kept\n"          # not even truncated
    assert "connection_error" not in done.stderr


def test_summary_json_in_a_missing_folder_is_a_usage_error_before_the_run(
        cli: Any, server: Any, tmp_path: Path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("one\n")
    before = server.stats()["total_requests"]
    done = cli("batch", str(source), "-o", str(out), "--summary-json",
               str(tmp_path / "nonexistent" / "s.json"))
    assert done.returncode == 2, done.stderr
    assert "--summary-json" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and server.stats()["total_requests"] == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_summary_json_that_fails_late_is_a_warning_and_keeps_the_exit_code(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("one\n")
    done = cli("batch", str(source), "-q", "--summary-json", "/dev/full")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("llmcli: warning: cannot write --summary-json /dev/full")
    assert json.loads(done.stdout)["status"] == "ok"
