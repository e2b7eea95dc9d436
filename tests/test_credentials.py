"""Missing or misplaced credentials fail fast and say how to fix them (issue 8, point 2)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .conftest import API_KEY, run_cli


def no_key_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLMCLI_"))}
    # were the key check to regress, the request must not reach the internet
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    return env


def test_no_key_for_openai_fails_before_the_network_with_exit_3():
    started = time.monotonic()
    done = run_cli("chat", "hi", env=no_key_env())
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 5
    assert done.stdout == "" and done.stderr.count("\n") == 1
    for word in ("OPENAI_API_KEY", "api_key_env", "config init", "https://api.openai.com/v1"):
        assert word in done.stderr


def test_no_key_for_another_providers_own_api_names_its_variable():
    done = run_cli("--api", "anthropic", "chat", "-m", "claude-x", "hi", env=no_key_env())
    assert done.returncode == 3, done.stderr
    assert "ANTHROPIC_API_KEY" in done.stderr and "https://api.anthropic.com/v1" in done.stderr


def test_no_key_for_openai_models_and_batch_too(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n")
    for args in (["models"], ["batch", str(source), "-o", str(tmp_path / "out.jsonl")]):
        done = run_cli(*args, env=no_key_env())
        assert done.returncode == 3 and "OPENAI_API_KEY" in done.stderr, done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_401_with_no_key_sent_says_how_to_set_one(api_env, server):
    env = {k: v for k, v in api_env.items() if k != "OPENAI_API_KEY"}
    started = time.monotonic()
    done = run_cli("chat", "hi", env=env)
    assert done.returncode == 4 and time.monotonic() - started < 5
    assert done.stderr.count("\n") == 1
    assert "no key was sent: set OPENAI_API_KEY, or api_key_env" in done.stderr


def test_batch_without_a_key_stops_at_the_first_401_and_resumes(api_env, server, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"prompt {n}\n" for n in range(200)))
    out = tmp_path / "out.jsonl"
    env = {k: v for k, v in api_env.items() if k != "OPENAI_API_KEY"}
    before = server.stats()["total_requests"]
    done = run_cli("batch", str(source), "-o", str(out), "-c", "2", env=env)
    sent = server.stats()["total_requests"] - before
    assert done.returncode == 4, done.stderr
    assert sent <= 4, f"{sent} requests sent after the first 401"
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("llmcli: error: HTTP 401") and "OPENAI_API_KEY" in lines[-1]
    assert any("--resume" in line and "not run" in line for line in lines)
    assert sum("401" in line for line in lines) == 1      # said once, not once per item
    assert len(out.read_text().splitlines()) <= 4
    resumed = run_cli("batch", str(source), "-o", str(out), "-c", "2", "--resume", env=api_env)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 200 and all(r["error"] is None for r in records)


def test_a_401_from_a_profile_with_its_own_base_url_explains_the_key(api_env, server,
                                                                    tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(f"profiles:\n  mine:\n    base_url: {server.base_url}\n")
    env = {k: v for k, v in api_env.items() if k != "OPENAI_BASE_URL"}
    done = run_cli("--config", str(config), "chat", "-p", "mine", "hi", env=env)
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1
    assert "OPENAI_API_KEY is deliberately never sent" in done.stderr
    assert "api_key_env" in done.stderr and "'mine'" in done.stderr
    assert API_KEY not in done.stderr
