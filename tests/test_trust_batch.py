"""Issue 11, points 1, 2, 3 and 10 for `llmcli batch`: one writer per output, no path
collision destroys data, a full disk ends cleanly, and a kill says what it cost."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli
from .harness import interruptible


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def requests_seen(server) -> int:
    return server.stats()["total_requests"]


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("llmcli: error:")]
    assert len(errors) == 1, stderr
    assert "please report" not in stderr and "Traceback" not in stderr
    return errors[0]


# -- 1. one writer per output --------------------------------------------------------------

def hold_lock(target: Path) -> subprocess.Popen:
    """Another process that holds ``target``'s lock, as a running batch would."""
    code = ("import sys, time\nfrom llmcli.core.filelock import FileLock\n"
            "FileLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


@pytest.mark.parametrize("extra", [[], ["--resume"], ["--force"]])
def test_a_second_run_on_the_same_output_fails_at_once_and_sends_nothing(cli, server, tmp_path,
                                                                        extra) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("a\nb\n")
    out.write_text('{"id":"1","status":"ok"}\n')
    holder = hold_lock(out)
    try:
        before = requests_seen(server)
        started = time.monotonic()
        done = cli("batch", str(source), "-o", str(out), *extra)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 75, done.stderr
    assert "being written by llmcli (pid" in one_error(done.stderr)
    assert requests_seen(server) == before
    assert out.read_text() == '{"id":"1","status":"ok"}\n'
    # The holder was killed (-9): its lock died with it, and the next run goes ahead.
    again = cli("batch", str(source), "-o", str(out), "--force", "-q")
    assert again.returncode == 0, again.stderr
    assert len(records(out)) == 2 and not (tmp_path / "out.jsonl.lock").exists()


def test_two_real_runs_at_once_never_both_write(cli, api_env, tmp_path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("".join(f"slow {n} #latency:100\n" for n in range(20)))
    first = subprocess.Popen([sys.executable, "-m", "llmcli", "batch", str(source), "-o",
                              str(out), "-c", "2", "-q"], cwd=ROOT, env=api_env,
                             stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.01)
        second = cli("batch", str(source), "-o", str(out), "--resume")
        assert second.returncode == 75, second.stderr
    finally:
        assert first.wait(timeout=30) == 0, first.stderr.read()
    assert sorted(int(r["id"]) for r in records(out)) == list(range(1, 21))


def test_the_lock_waits_then_gives_up_on_a_fake_clock(tmp_path) -> None:
    from llmcli.core.errors import BusyError
    from llmcli.core.filelock import FileLock

    target = str(tmp_path / "conv.json")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
    with FileLock(target).acquire():
        with pytest.raises(BusyError, match=f"pid {os.getpid()}"):
            FileLock(target).acquire(5.0, clock=lambda: now[0], sleep=sleep)
    assert 5.0 <= now[0] < 5.2
    FileLock(target).acquire().release()     # free again once released
    assert not os.path.exists(target + ".lock")


# -- 1. one turn at a time on a --conversation file ----------------------------------------

def test_a_turn_waits_for_another_turn_on_the_same_conversation(cli, tmp_path,
                                                                monkeypatch) -> None:
    from llmcli.cli import conversation

    monkeypatch.setattr(conversation, "LOCK_WAIT", 2.0)   # in-process: 2 s, not 5
    conv = tmp_path / "conv.json"
    assert cli("chat", "--conversation", str(conv), "first").returncode == 0
    holder = hold_lock(conv)
    try:
        busy = cli("chat", "--conversation", str(conv), "second")     # waits, then fails
    finally:
        holder.kill()
        holder.wait()
    assert busy.returncode == 75 and "being written" in one_error(busy.stderr)
    assert [m["content"] for m in json.loads(conv.read_text())] == ["first", "echo: first"]
    code = ("import sys, time\nfrom llmcli.core.filelock import FileLock\n"
            "lock = FileLock(sys.argv[1]).acquire()\nprint('held', flush=True)\n"
            "time.sleep(1)\nlock.release()\n")
    brief = subprocess.Popen([sys.executable, "-c", code, str(conv)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert brief.stdout.readline() == "held\n"
    waited = cli("chat", "--conversation", str(conv), "second")       # gets it after ~1 s
    brief.wait()
    assert waited.returncode == 0, waited.stderr
    assert len(json.loads(conv.read_text())) == 4


def test_a_paid_reply_that_cannot_be_saved_is_kept_beside_and_said(tmp_path) -> None:
    from .canned_server import JSON, CannedServer, completion

    conv = tmp_path / "conv.json"
    conv.write_text("[]")

    def answer(_request):        # while the request is out, FILE becomes a folder
        conv.unlink()
        conv.mkdir()
        return 200, JSON, completion("the paid reply")
    env = dict(os.environ, OPENAI_API_KEY="sk-x-0123456789", LLMCLI_MODEL="m")
    with CannedServer(answer) as url:
        done = run_cli("chat", "--conversation", str(conv), "hi", env=dict(env, OPENAI_BASE_URL=url))
    assert done.returncode == 74
    assert done.stdout == "the paid reply\n"
    line = one_error(done.stderr)
    spare = [p for p in tmp_path.iterdir() if p.name.startswith("conv.json.reply-")]
    assert len(spare) == 1 and str(spare[0]) in line
    assert json.loads(spare[0].read_text())[-1] == {"role": "assistant", "content": "the paid reply"}


# -- 2. no path collision destroys data ----------------------------------------------------

@pytest.mark.parametrize("content", [
    "my notes\nline two\n",
    "just one line, no newline",
    json.dumps([{"role": "user", "content": "hi"}], indent=2) + "\n",     # a conversation
    json.dumps({"id": "x", "status": "ok"}, indent=2) + "\n",              # pretty JSON
    '{"id":"1","status":"ok"}\nnot a record\n{"id":"2","status":"ok"}\n',  # one foreign line
])
def test_resume_refuses_a_file_that_is_not_a_batch_output_and_leaves_it(cli, server, tmp_path,
                                                                       content) -> None:
    source, notes = tmp_path / "in.txt", tmp_path / "notes.txt"
    source.write_text("a\n")
    notes.write_text(content)
    before = requests_seen(server)
    done = cli("batch", str(source), "-o", str(notes), "--resume")
    assert done.returncode == 2, done.stderr
    assert "not a batch record" in one_error(done.stderr)
    assert notes.read_text() == content and requests_seen(server) == before


@pytest.mark.parametrize("option", ["--summary-json", "--log-file", "-o"])
def test_files_must_be_distinct_by_inode_not_by_name(cli, server, tmp_path, option) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("a\n")
    out.write_text("")
    alias = tmp_path / "alias"
    if option == "-o":      # -o a hard link to the input
        os.link(source, alias)
        args = ["batch", str(source), "-o", str(alias)]
    else:                   # the other file a symlink to -o
        alias.symlink_to(out)
        args = (["--log-file", str(alias)] if option == "--log-file" else []) + [
            "batch", str(source), "-o", str(out)] + (
            ["--summary-json", str(alias)] if option == "--summary-json" else [])
    before = requests_seen(server)
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert "same file" in one_error(done.stderr)
    assert requests_seen(server) == before
    assert source.read_text() == "a\n"


def test_resume_refuses_an_input_that_changed_under_its_ids(cli, server, tmp_path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("apples\npears\n")
    assert cli("batch", str(source), "-o", str(out), "-q").returncode == 0
    written = out.read_text()
    source.write_text("INSERTED\napples\npears\n")      # every line-number id shifts
    before = requests_seen(server)
    done = cli("batch", str(source), "-o", str(out), "--resume")
    assert done.returncode == 2, done.stderr
    assert "changed since the run" in one_error(done.stderr)
    assert out.read_text() == written and requests_seen(server) == before
    source.write_text("apples\npears\n")
    other_model = cli("batch", str(source), "-o", str(out), "--resume", "-m", "other-model")
    assert other_model.returncode == 2 and out.read_text() == written
    same = cli("batch", str(source), "-o", str(out), "--resume", "-q")
    assert same.returncode == 0 and out.read_text() == written
    assert requests_seen(server) == before


# -- 3. a full disk --------------------------------------------------------------------------

def test_a_full_disk_ends_in_one_line_the_summary_and_the_resume_command(cli, tmp_path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("".join(f"p{n}\n" for n in range(5)))
    out.symlink_to("/dev/full")                 # every write fails with ENOSPC
    done = cli("batch", str(source), "-o", str(out))
    assert done.returncode == 74, done.stderr
    assert "No space left on device" in one_error(done.stderr)
    assert "batch: 0 ok, 0 failed, 5 not run of 5" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].endswith("--resume")


def test_a_failed_write_cuts_the_file_back_to_its_last_whole_record(tmp_path, monkeypatch) -> None:
    from llmcli.batch import writer as w
    from llmcli.core.errors import FileWriteError

    path = tmp_path / "out.jsonl"
    sink = w.FdSink.open(str(path), append=False)
    records_writer = w.RecordWriter(sink, ordered=True)
    records_writer.put(0, b'{"id":"0"}\n')
    real_write = os.write

    def full_disk(fd: int, data) -> int:      # half a record goes out, then the disk is full
        if fd == sink.fd and len(data) > 4:
            real_write(fd, bytes(data[:4]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(w.os, "write", full_disk)
    with pytest.raises(FileWriteError, match="No space left"):
        records_writer.put(1, b'{"id":"1"}\n', paid=True)
    with pytest.raises(FileWriteError):       # and nothing more is written after it
        records_writer.put(2, b'{"id":"2"}\n')
    monkeypatch.undo()
    sink.close()
    assert path.read_bytes() == b'{"id":"0"}\n'


# -- 10. what a kill costs -----------------------------------------------------------------

def test_after_kill_9_resume_reports_the_requests_that_were_in_flight(api_env, cli, tmp_path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("".join(f"k {n} #latency:300\n" for n in range(40)))
    proc = subprocess.Popen([sys.executable, "-m", "llmcli", "batch", str(source), "-o", str(out),
                             "-c", "4", "--unordered", "-q"], cwd=ROOT, env=api_env,
                            stdin=subprocess.DEVNULL, preexec_fn=interruptible)
    deadline = time.monotonic() + 20
    while not (out.exists() and out.read_bytes().count(b"\n") >= 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journal = (tmp_path / "out.jsonl.lock").read_text()
    in_flight = int(journal.split()[-1])
    assert 1 <= in_flight <= 4                  # at most the concurrency, unordered
    summary = tmp_path / "summary.json"
    done = cli("batch", str(source), "-o", str(out), "-c", "8", "--unordered", "--resume",
               "--summary-json", str(summary))
    assert done.returncode == 0, done.stderr
    assert json.loads(summary.read_text())["lost_in_flight"] == in_flight
    assert f"stopped with {in_flight} request(s) in flight" in done.stderr
    assert len(records(out)) == 40 and not (tmp_path / "out.jsonl.lock").exists()


def test_a_remote_batch_on_an_output_being_written_fails_at_once(cli, server, tmp_path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("a\nb\n")
    holder = hold_lock(out)
    try:
        before = requests_seen(server)
        done = cli("batch", str(source), "-o", str(out), "--remote", "--poll-interval", "0.05")
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 75, done.stderr
    assert "being written" in one_error(done.stderr)
    assert requests_seen(server) == before and not out.exists()
