"""Help that teaches (issue 8, point 4): nothing cut off at 80 columns, arguments
described, global flags shown, defaults in one style, docs reachable from a wheel,
progress bars that fit."""

from __future__ import annotations

import os
import re
import time

import pytest

from llmcli.batch.engine import Stats
from llmcli.batch.progress import progress_bar

from .conftest import ROOT, run_cli

COMMANDS = [[], ["chat"], ["stream"], ["batch"], ["batches"], ["models"], ["usage"], ["docs"],
            ["config"],
            ["config", "init"], ["config", "show"], ["config", "path"]]


def help_of(*words: str) -> str:
    done = run_cli(*words, "--help", env=dict(os.environ, COLUMNS="80"))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "llmcli")
def test_help_fits_80_columns_and_cuts_nothing(words):
    text = help_of(*words)
    assert max(len(line) for line in text.splitlines()) <= 80
    body = [line for line in text.splitlines() if not line.startswith("Usage:")]
    cut = [line for line in body if re.search(r"[A-Za-z,;]\.\.\.$", line)]
    assert not cut, cut      # Click ends a cut-off description with "..."
    assert "(default" not in text and "[default: (" not in text   # one style: [default: X]


def test_the_command_list_shows_whole_sentences():
    text = help_of()
    listing = text.split("Commands:")[1]
    entries = re.split(r"\n  (?=\S)", listing.strip("\n").removeprefix("  "))
    described = {entry.split()[0]: " ".join(entry.split()[1:]) for entry in entries}
    assert {"chat", "stream", "batch", "batches", "models", "docs", "config"} <= set(described)
    for name, sentence in described.items():
        assert sentence.endswith("."), (name, sentence)    # whole, not cut at 45


def test_top_level_help_has_a_quick_start_env_vars_and_docs():
    text = help_of()
    assert "Quick start:" in text and 'llmcli chat "' in text
    for word in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLMCLI_MODEL", "llmcli docs"):
        assert word in text
    assert "docs/" not in text    # no repository paths: a wheel has none


@pytest.mark.parametrize("words, argument", [(["chat"], "PROMPT"), (["stream"], "PROMPT"),
                                             (["batch"], "INPUT"), (["docs"], "TOPIC")])
def test_arguments_are_described(words, argument):
    text = help_of(*words)
    section = text.split("Arguments:")[1].split("Options:")[0]
    assert argument in section and len(" ".join(section.split())) > 40


@pytest.mark.parametrize("words", COMMANDS[1:], ids=" ".join)
def test_each_command_shows_the_global_flags(words):
    text = help_of(*words)
    if "Commands:" in text:     # `llmcli config`: a group, its commands show them
        return
    glob = text.split("Global options:")[1]
    assert "-v, --verbose" in glob and "--debug" in glob


def test_global_flags_work_where_help_says(cli):
    done = cli("chat", "hi", "-v")
    assert done.returncode == 0 and "POST" in done.stderr


def test_docs_lists_prints_and_finds_a_section(cli):
    listing = cli("docs")
    assert listing.returncode == 0
    assert {"usage", "config", "exit-codes", "batch", "recipes"} <= {
        line.split()[0] for line in listing.stdout.splitlines() if line.strip()}
    page = cli("docs", "exit-codes")
    assert page.stdout == (ROOT / "docs" / "exit-codes.md").read_text(encoding="utf-8")
    part = cli("docs", "usage#prompt-and-stdin")
    assert part.stdout.startswith("### Prompt and stdin\n") and "LLMCLI_STDIN_WAIT" in part.stdout
    assert "### Retries" not in part.stdout
    bad = cli("docs", "nosuch")
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_help_refers_to_docs_topics_that_exist(cli):
    names = {line.split()[0] for line in cli("docs").stdout.splitlines()[:-2] if line.strip()}
    for words in COMMANDS:
        text = help_of(*words)
        for topic in re.findall(r"llmcli docs ([a-z-]+)", text):
            assert topic in names, f"help names missing docs topic {topic!r}"
        # a wheel has no docs/ folder: help names `llmcli docs TOPIC`, never a repo path
        assert not re.search(r"docs/[a-z-]+\.md", text), (words, text)


def stats(done: int = 2123, total: int = 100000) -> Stats:
    s = Stats(total=total)
    s.done, s.ok, s.failed, s.retries = done, done - 12, 12, 40
    s.prompt_tokens, s.completion_tokens = 1_200_000, 431_870
    s.started = time.monotonic() - 5.0
    return s


@pytest.mark.parametrize("width", [200, 100, 80, 79, 60, 40, 30])
def test_the_progress_bar_fits_and_keeps_the_eta(width):
    line = progress_bar(stats(), width)
    assert len(line) <= width
    assert re.search(r"ETA \d+:\d\d$", line), line
    assert "2123/100000" in line


def test_the_progress_bar_drops_the_least_useful_fields_first():
    full = progress_bar(stats())
    assert "tok" in full and "req/s" in full and "retries" in full
    at_79 = progress_bar(stats(), 79)
    assert "tok" not in at_79 and "failed 12" in at_79 and at_79.startswith("[")
