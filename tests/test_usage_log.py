"""The usage log: one row per request from every command, `llmcli usage` reports, no
content or key unless asked, many processes at once with no lost row."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmcli.usage import log as usage_log
from llmcli.usage.report import parse_since, query, table

from .conftest import API_KEY, ROOT


def db_file() -> Path:
    return usage_log.db_path()


def rows(sql: str = "SELECT command, model, status, prompt_tokens, completion_tokens, cost, "
                    "profile, prompt, reply FROM requests ORDER BY id") -> list[tuple]:
    with sqlite3.connect(db_file()) as db:
        return db.execute(sql).fetchall()


@pytest.fixture
def config(clean_env: Path):
    def write(text: str) -> None:
        clean_env.mkdir(parents=True, exist_ok=True)
        (clean_env / "config.yaml").write_text(text)
    return write


def test_the_log_lives_in_the_data_dir_in_wal_mode(cli, tmp_path):
    assert cli("chat", "hi").returncode == 0
    assert db_file() == tmp_path / "home" / ".local" / "share" / "llmcli" / "usage.db"
    with sqlite3.connect(db_file()) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == usage_log.SCHEMA_VERSION
    assert rows()[0][:5] == ("chat", "test-model", "ok", 1, 2)


def test_a_mixed_run_is_reported_by_model_day_and_profile(cli, config, tmp_path):
    config("prices:\n  test-model: {input: 1000000, output: 1000000}\n"
           "profiles:\n  big:\n    max_retries: 1\n")
    assert cli("chat", "one two").returncode == 0                     # 2 + 3 tokens, $5
    assert cli("stream", "three").returncode == 0                     # 1 + 2 tokens, $3
    assert cli("chat", "--retries", "0", "x #fault:500").returncode == 5
    assert cli("chat", "-p", "big", "-m", "test-model-large", "four").returncode == 0           # unpriced
    src = tmp_path / "in.txt"
    src.write_text("a\nb #fault:500\nc\n")
    assert cli("batch", str(src), "--retries", "0", "-q").returncode == 7
    log = rows()
    assert [r[0] for r in log].count("batch") == 3
    assert sorted(r[2] for r in log) == ["ok"] * 5 + ["server_error"] * 2
    done = cli("usage", "--json", "--by", "model")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_model = {r["key"]: r for r in report["rows"]}
    assert by_model["test-model"]["requests"] == 6 and by_model["test-model"]["errors"] == 2
    assert by_model["test-model"]["cost"] == pytest.approx(5 + 3 + 3 + 3)
    assert by_model["test-model-large"]["unpriced"] == 1 and by_model["test-model-large"]["cost"] is None
    assert report["total"]["requests"] == 7
    profiles = json.loads(cli("usage", "--json", "--by", "profile").stdout)
    assert {r["key"]: r["requests"] for r in profiles["rows"]} == {"(none)": 6, "big": 1}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    text = cli("usage", "--since", "1d").stdout
    assert text.splitlines()[1].startswith(today) and text.splitlines()[2].startswith("total")
    assert "1 request(s) of models with no known price" in text
    assert json.loads(cli("usage", "--json", "--since", "2999-01-01").stdout)["total"]["requests"] == 0


def test_no_content_and_no_key_unless_asked(cli, config):
    assert cli("chat", "secret-prompt-words").returncode == 0
    assert rows()[0][7:] == (None, None)
    config("log_content: true\n")
    assert cli("chat", "kept-prompt-words").returncode == 0
    prompt, reply = rows()[-1][7:]
    assert "kept-prompt-words" in json.loads(prompt)[0]["content"] and reply.startswith("echo:")
    data = db_file().read_bytes() + b"".join(p.read_bytes() for p in db_file().parent.glob("usage.db-*"))
    assert API_KEY.encode() not in data and b"secret-prompt-words" not in data


def test_log_false_writes_nothing(cli, config, tmp_path):
    config("log: false\n")
    assert cli("chat", "hi").returncode == 0
    src = tmp_path / "in.txt"
    src.write_text("a\n")
    assert cli("batch", str(src), "-q").returncode == 0
    assert not db_file().exists()


def test_an_unwritable_log_is_a_warning_not_a_failure(cli, api_env, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    env = dict(api_env, LLMCLI_USAGE_DB=str(blocked / "usage.db"))   # its folder is a file
    done = cli("chat", "hi", env=env)
    assert done.returncode == 0 and done.stdout == "echo: hi\n"
    assert "cannot write the usage log" in done.stderr


def test_twenty_processes_logging_at_once_lose_no_row(api_env):
    procs = [subprocess.Popen([sys.executable, "-m", "llmcli", "chat", f"concurrent {i}"],
                              env=api_env, cwd=ROOT, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(20)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [e for _, e in results if e]
    assert all(b"warning" not in err for _, err in results)
    logged = sorted(r[0] for r in rows("SELECT count(*) FROM requests"))
    assert logged == [20]
    with sqlite3.connect(db_file()) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_background_log_writes_every_row_in_few_transactions(tmp_path):
    warnings: list[str] = []
    log = usage_log.BackgroundLog(tmp_path / "u.db", warnings.append)
    for i in range(2000):
        log.put(usage_log.row(ts=float(i), command="batch", status="ok", item=str(i)))
    log.close()
    assert warnings == [] and log.rows_written == 2000
    with sqlite3.connect(tmp_path / "u.db") as db:
        assert db.execute("SELECT count(DISTINCT item) FROM requests").fetchone()[0] == 2000


def test_report_and_since_parsing(tmp_path):
    now = 1_800_000_000.0
    assert parse_since("7d", now) == now - 7 * 86400 and parse_since("12h", now) == now - 43200
    assert parse_since("2026-11-01", now) == 1793491200.0
    with pytest.raises(ValueError):
        parse_since("last week", now)
    path = tmp_path / "u.db"
    usage_log.write(path, [usage_log.row(ts=now, command="chat", model="m", status="ok",
                                         prompt_tokens=10, completion_tokens=5, cost=0.5),
                           usage_log.row(ts=now - 86400 * 3, command="chat", model="m", status="ok",
                                         prompt_tokens=1, completion_tokens=1, cost=None)])
    data = query(path, "day", now - 86400)
    assert [r["key"] for r in data["rows"]] == ["2027-01-15"] and data["total"]["cost"] == 0.5
    assert table(query(path, "model", None)).splitlines()[1].split() == ["m", "2", "0", "11", "6", "0.5000"]
    assert query(tmp_path / "none.db", "day", None)["total"]["requests"] == 0


def test_usage_bad_since_is_a_usage_error(cli):
    done = cli("usage", "--since", "yesterday")
    assert done.returncode == 2 and "--since" in done.stderr


def test_batch_rows_are_built_in_column_order():
    from llmcli.batch.accounting import RunAccounting
    from llmcli.batch.reader import Item
    from llmcli.core.chat import ChatResult
    from llmcli.usage.prices import load_table

    rows: list[tuple] = []
    sink = type("Sink", (), {"put": lambda self, row: rows.append(row)})()
    acc = RunAccounting(load_table(), log=sink, profile="p", batch="out.jsonl")
    result = ChatResult(content="x", finish_reason="stop", model="gpt-4o-mini", request_id="r",
                        usage={"prompt_tokens": 10, "completion_tokens": 4,
                               "prompt_tokens_details": {"cached_tokens": 2}})
    cost = acc.settle(Item(0, 1, "a", None), {"model": "gpt-4o-mini"}, None, result, None, 2, 7)
    named = dict(zip(usage_log.COLUMNS, rows[0]))
    assert len(rows[0]) == len(usage_log.COLUMNS)
    assert {k: v for k, v in named.items() if k != "ts"} == {
        "command": "batch", "profile": "p", "model": "gpt-4o-mini", "status": "ok", "error": None,
        "prompt_tokens": 10, "completion_tokens": 4, "cached_tokens": 2, "cost": cost,
        "latency_ms": 7, "attempts": 2, "request_id": "r", "batch": "out.jsonl", "item": "a",
        "prompt": None, "reply": None}


def test_a_since_too_far_back_means_everything_and_an_unrepresentable_date_is_a_usage_error(cli):
    for since in ("99999999d", "1" + "0" * 30 + "w"):
        done = cli("usage", "--json", "--since", since)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["since"] == "1970-01-01T00:00:00Z"
    for since in ("0001-01-01T00:00+14:00", "9999-12-31T23:59:59-14:00"):
        done = cli("usage", "--since", since)
        assert done.returncode == 2 and "please report" not in done.stderr, done.stderr


@pytest.mark.parametrize("content", [b"hello\n", b"SQLite format 3\x00garbage" * 10, None])
def test_a_corrupt_usage_log_is_one_clear_line_not_a_crash(cli, api_env, tmp_path, content):
    db = tmp_path / "usage.db"
    if content is None:
        db.mkdir()
    else:
        db.write_bytes(content)
    env = dict(api_env, LLMCLI_USAGE_DB=str(db))
    chat = cli("chat", "hi", env=env)
    assert chat.returncode == 0 and "cannot write the usage log" in chat.stderr  # a warning only
    done = cli("usage", env=env)
    assert done.returncode == 74, done.stderr
    assert "cannot read the usage log" in done.stderr and str(db) in done.stderr
    assert "please report" not in done.stderr and done.stdout == ""


def test_a_line_whose_model_is_an_object_does_not_stop_the_log_of_the_run(cli, tmp_path):
    """`"model": {...}` on one JSONL line (or a server's 10**30 tokens): that row is
    stored as text, and the rows of the other items are all still logged, once."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "one"}\n{"prompt": "two", "model": {"x": 1}}\n'
                   '{"prompt": "three"}\n')
    done = cli("batch", str(src), "-o", str(tmp_path / "out.jsonl"), "--concurrency", "1")
    assert done.returncode == 7 and "usage log" not in done.stderr, done.stderr
    with sqlite3.connect(db_file()) as db:
        got = db.execute("SELECT item, model FROM requests ORDER BY item").fetchall()
    assert got == [("1", "test-model"), ("2", '{"x": 1}'), ("3", "test-model")]
    log = usage_log.BackgroundLog(tmp_path / "u.db", print)
    log.put(usage_log.row(ts=1.0, command="batch", status="ok", item="a"))
    log.put((1.0, "batch", None, "m", "ok", None, 10**30) + (None,) * 10)
    log.close()
    with sqlite3.connect(tmp_path / "u.db") as db:
        assert db.execute("SELECT item, prompt_tokens FROM requests").fetchall() == [
            ("a", None), (None, None)]


def test_usage_table_neutralises_a_hostile_model_name(tmp_path):
    """A server names the model: its escape sequences (set the title, clear the screen)
    and newlines must not reach the terminal through `llmcli usage`."""
    db = tmp_path / "u.db"
    usage_log.write(db, [usage_log.row(ts=1.0, command="chat", status="ok",
                                       model="gpt\x1b]0;pwned\x07\x1b[2J\nfake-row")])
    text = table(query(db, "model", None))
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;pwned" in text
    assert len(text.splitlines()) == 4    # header, the one row, total, the unpriced note
