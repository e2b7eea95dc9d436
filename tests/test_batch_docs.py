"""docs/batch.md documents every option of `llmcli batch` and every summary field."""

from __future__ import annotations

import re

import typer.main

from llmcli.batch.engine import Outcome, Stats
from llmcli.batch.progress import summary
from llmcli.cli.app import app

from .conftest import ROOT

DOC = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")


def test_every_batch_option_is_documented() -> None:
    command = typer.main.get_command(app).commands["batch"]   # type: ignore[attr-defined]
    longs = [max(p.opts, key=len) for p in command.params if p.opts[0].startswith("-")]
    assert len(longs) > 20
    missing = [name for name in longs if not any(f"{sep}{name}" in DOC for sep in ("`", ", ", "/"))]
    assert missing == []


def test_every_summary_field_is_documented() -> None:
    fields = list(summary(Outcome(Stats()), None)) + ["exit_code"]
    table = dict(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", DOC, flags=re.M))
    documented = set(table) | {v for v in table.values() if v}
    assert [f for f in fields if f not in documented] == []
