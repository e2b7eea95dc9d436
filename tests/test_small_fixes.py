"""Small correctness items of issue 8, point 5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcli.testing import reply_for

from .conftest import ROOT
from .pty_helper import Terminal, llmcli_argv, terminal_env


def test_config_show_json_has_real_json_types(cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("timeout: 30\nmax_retries: 5\nverify: false\n"
                      "query:\n  api-version: 2024-06-01\nparams:\n  top_p: 0.5\n")
    done = cli("--config", str(config), "config", "show", "--json")
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)["settings"]
    assert settings["timeout"]["value"] == 30 and settings["max_retries"]["value"] == 5
    assert settings["verify"]["value"] is False and settings["system_trust"]["value"] is False
    assert settings["connect_timeout"]["value"] == 10.0
    assert settings["params"]["value"] == {"top_p": 0.5}
    assert settings["query"]["value"] == {"api-version": "2024-06-01"}
    text = cli("--config", str(config), "config", "show").stdout
    assert "False" in text and "30" in text    # the text form is unchanged


def test_a_mid_stream_error_on_a_terminal_starts_its_own_line(api_env):
    term = Terminal(llmcli_argv("stream", "hello #fault:streamerror"),
                    terminal_env(api_env), cwd=str(ROOT))
    try:
        before = term.expect("llmcli: error:")
        assert term.wait() == 5
    finally:
        term.close()
    assert before.strip() and before.endswith("\n"), repr(before)


def test_a_mid_stream_error_in_a_pipe_leaves_stdout_as_sent(cli):
    done = cli("stream", "hello #fault:streamerror")
    assert done.returncode == 5
    assert done.stdout and not done.stdout.endswith("\n")   # the reply so far, untouched


def test_batch_of_a_directory_says_so(cli, tmp_path):
    done = cli("batch", str(tmp_path))
    assert done.returncode == 2
    assert "it is a directory" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("text, line, words", [
    ("model: [unclosed\n", 1, "flow sequence"),
    ("model: x\nbase_url: \"abc\ntimeout: 3\n", 2, "quoted scalar"),
    ("model: x\ntimeout: 1\nheaders: {a: b\n\n\nx: 1\n", 3, "flow mapping"),
    ("model: x\n  timeout: 3\n", 2, "mapping values"),
    ("model: x\nprofiles:\n  p:\n    model: y\n   bad: 1\n", 5, "expected key"),
])
def test_a_yaml_error_names_the_line_to_fix(cli, tmp_path, text, line, words):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    done = cli("--config", str(config), "config", "show")
    assert done.returncode == 3
    assert f"{config}:{line}: broken YAML" in done.stderr and words in done.stderr


def test_exit_7_when_every_item_failed_and_the_summary_says_how_many(cli, tmp_path: Path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"i{n}", "prompt": f"p{n} #fault:400"}) + "\n"
                              for n in range(5)))
    summary = tmp_path / "s.json"
    done = cli("batch", str(source), "-o", str(tmp_path / "o.jsonl"),
               "--summary-json", str(summary))
    assert done.returncode == 7, done.stderr
    data = json.loads(summary.read_text())
    assert data["ok"] == 0 and data["failed"] == 5 and data["exit_code"] == 7
    assert data["stopped"] is None


def test_exit_7_when_some_failed(cli, tmp_path: Path):
    source = tmp_path / "in.txt"
    source.write_text("fine\nbad #fault:400\n")
    done = cli("batch", str(source), "-o", str(tmp_path / "o.jsonl"))
    assert done.returncode == 7
    ok = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["status"] for r in ok] == ["ok", "error"]
    assert ok[0]["content"] == reply_for([{"role": "user", "content": "fine"}])
