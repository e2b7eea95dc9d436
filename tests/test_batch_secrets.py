"""`llmcli batch` never writes the API key anywhere, even when the server echoes it back:
in error messages and bodies, and in the x-request-id of every answer (ok ones too)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest

from llmcli.testing import MockOpenAIServer

from .conftest import API_KEY, run_cli

WRONG_KEY = "sk-wrong-9876543210zyxwvuQRST"


@pytest.fixture(scope="module")
def careless() -> Iterator[MockOpenAIServer]:
    """A server that puts the raw key it was sent wherever careless servers put it."""
    with MockOpenAIServer(api_key=API_KEY, echo_key=True) as srv:
        yield srv


@pytest.mark.parametrize("output_format", ["jsonl", "openai-batch"])
@pytest.mark.parametrize("key, to_file", [(API_KEY, True), (WRONG_KEY, False)],
                         ids=["accepted-key-to-file", "refused-key-to-stdout"])
def test_no_output_of_batch_holds_the_key(careless: MockOpenAIServer, tmp_path: Path,
                                          output_format: str, key: str, to_file: bool) -> None:
    source, out, summary = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "s.json"
    rows = [{"id": "ok", "prompt": "fine"}, {"id": "bad", "prompt": "no #fault:400"},
            {"id": "down", "prompt": "down #fault:503"},
            {"id": "limited", "prompt": "slow #fault:429@ms:10*1"}, {"id": "empty"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = dict(os.environ, OPENAI_BASE_URL=careless.base_url, OPENAI_API_KEY=key,
               LLMCLI_MODEL="test-model")
    args = ["-v", "--debug", "batch", str(source), "--output-format", output_format,
            "--retries", "1", "--summary-json", str(summary)] + (["-o", str(out)] if to_file else [])
    done = run_cli(*args, env=env)
    # a refused key stops the run at its first 401 (items already in flight keep
    # their records): exit 4, not 7
    assert done.returncode == (7 if key == API_KEY else 4), done.stderr
    written = out.read_text() if to_file else done.stdout
    assert 1 <= len(written.splitlines()) <= len(rows)
    if key == API_KEY:
        assert len(written.splitlines()) == len(rows)
    if key == API_KEY:   # the server did echo it: the test would catch a leak
        assert careless.stats()["total_requests"] > 0
    for where, text in [("stdout", done.stdout), ("stderr", done.stderr),
                        ("records", written), ("summary", summary.read_text())]:
        assert key not in text, f"the key leaked into {where}"
    assert "...QRST" in written or "...WXYZ" in written     # masked, still recognisable
