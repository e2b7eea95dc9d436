"""Batch input: format detection, ids, bodies, bad lines, the duplicate pre-pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmcli.batch.ids import IdSet
from llmcli.batch.reader import Defaults, InputError, detect_format, read_items, scan


def write(tmp_path: Path, text: str, name: str = "in.txt") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def jsonl(*objs: object) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def items(path: str, fmt: str = "auto", defaults: Defaults = Defaults(model="m")) -> list:
    found = scan(path, fmt)
    return list(read_items(path, found.format, defaults))


def test_the_core_never_imports_the_cli() -> None:
    code = ("import sys, llmcli.batch.job, llmcli.batch.progress, llmcli.batch.engine; "
            "print(sorted(m for m in ('typer', 'click', 'llmcli.cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text, expected", [
    ("hello\nworld\n", "plain"),
    ('{"prompt": "hi"}\n', "jsonl"),
    ('{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n',
     "openai-batch"),
    ('\n\n{"id": 1, "prompt": "x"}\n{broken\n', "jsonl"),
    # a prompt that starts with a brace is not JSON: the file is plain text
    ("\n\n{broken\n", "plain"),
    ("{name} is a placeholder: fill it in\n{\"prompt\": \"hi\"}\n", "plain"),
    ("", "plain"),
])
def test_detect_format(tmp_path: Path, text: str, expected: str) -> None:
    assert detect_format(write(tmp_path, text)) == expected


def test_plain_lines_get_line_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufefffirst\r\n\n   \nsecond line\n")
    got = items(path, defaults=Defaults(model="m", system="be brief", params={"temperature": 0}))
    assert [(i.seq, i.line, i.id) for i in got] == [(0, 1, "1"), (1, 4, "4")]
    assert got[0].body == {"model": "m", "temperature": 0, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "first"}]}
    assert got[1].body["messages"][-1]["content"] == "second line"


def test_jsonl_line_fields_override_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl(
        {"id": "x", "prompt": "p", "model": "other", "temperature": None, "seed": 7},
        {"id": 5, "messages": [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}]},
        {"custom_id": "z", "prompt": "p", "system": "line system", "stream": True},
    ))
    got = items(path, defaults=Defaults(model="m", system="flag system", params={"temperature": 1}))
    assert [i.id for i in got] == ["x", "5", "z"]
    assert got[0].body == {"model": "other", "seed": 7,
                           "messages": [{"role": "system", "content": "flag system"},
                                        {"role": "user", "content": "p"}]}
    assert got[1].body["messages"][0] == {"role": "system", "content": "own"}   # the line's wins
    assert got[2].body["messages"][0] == {"role": "system", "content": "line system"}
    assert "stream" not in got[2].body


def test_batch_api_requests_run_unchanged(tmp_path: Path) -> None:
    request = {"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}],
                        "max_tokens": 5}}
    got = items(write(tmp_path, jsonl(request)), defaults=Defaults(model="m", params={"temperature": 0}))
    assert got[0].id == "req-1"
    assert got[0].body == {"model": "gpt-x", "temperature": 0, "max_tokens": 5,
                           "messages": [{"role": "user", "content": "hi"}]}


def test_bad_lines_become_error_items(tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join([
        '{"id": "ok", "prompt": "fine"}', "{not json", '{"id": "np"}', '{"id": [1], "prompt": "x"}',
        '["a list"]', '{"prompt": 3}',
        '{"custom_id": "b", "url": "/v1/embeddings", "body": {"messages": [{"role": "user"}]}}',
    ]) + "\n")
    got = items(path)
    assert [(i.id, i.body is None) for i in got] == [
        ("ok", False), ("2", True), ("np", True), ("4", True), ("5", True), ("6", True), ("b", True)]
    errors = [i.error for i in got[1:]]
    assert "not valid JSON" in errors[0] and errors[0].startswith("line 2:")
    assert "no prompt" in errors[1]
    assert "id must be" in errors[2]
    assert "JSON object" in errors[3]
    assert "`prompt` must be text" in errors[4]
    assert "/v1/embeddings" in errors[5]


def test_forced_batch_format_rejects_plain_jsonl_lines(tmp_path: Path) -> None:
    got = items(write(tmp_path, jsonl({"id": "a", "prompt": "p"})), fmt="openai-batch")
    assert got[0].body is None and "no `body`" in got[0].error


def test_invalid_utf8_in_a_plain_line_is_an_error_item(tmp_path: Path) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(b"good\n\xff\xfe bad\n")
    got = items(str(path))
    assert got[0].body is not None and got[1].body is None and "UTF-8" in got[1].error


def test_duplicate_ids_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl({"id": "a", "prompt": "1"}, {"id": "b", "prompt": "2"},
                                 {"id": "a", "prompt": "3"}, {"prompt": "line four"},
                                 {"id": "4", "prompt": "clashes with line 4's number"}))
    with pytest.raises(InputError) as info:
        scan(path, "auto")
    assert "'a' on lines 1, 3" in info.value.message
    assert "'4' on lines 4, 5" in info.value.message


def test_scan_counts_and_skips_done_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "a\nb\n\nc\n")
    done = IdSet()
    done.add("2")
    found = scan(path, "auto", done)
    assert (found.format, found.total, found.skipped) == ("plain", 2, 1)
    assert [(i.seq, i.id) for i in read_items(path, "plain", Defaults(), done)] == [(0, "1"), (1, "4")]


def test_idset_grows_and_keeps_every_member() -> None:
    ids = IdSet()
    keys = [f"id-{n}" for n in range(5000)]
    assert all(ids.add(k) for k in keys)
    assert not ids.add("id-42")
    assert len(ids) == 5000
    assert all(k in ids for k in keys)
    assert "id-5000" not in ids and "" not in ids


# Deep enough for every Python's json: 3.13's C scanner reads 5,000 levels, not 20,000.
DEEP = 200_000


def test_a_line_nested_too_deeply_to_read_is_that_line_s_failed_record(cli, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "one"}\n' + "[" * 100_000 + "\n"
                   + '{"prompt": ' + "[" * DEEP + "]" * DEEP + ', "id": "x"}\n{"prompt": "two"}\n')
    done = cli("batch", str(src), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 7 and "please report" not in done.stderr, done.stderr
    records = [json.loads(r) for r in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["status"]) for r in records) == [
        ("1", "ok"), ("2", "error"), ("3", "error"), ("4", "ok")]
    assert "nested too deeply" in next(r for r in records if r["id"] == "3")["error"]["message"]
