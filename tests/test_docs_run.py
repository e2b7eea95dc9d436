"""The shell examples in README.md, docs/usage.md and docs/recipes.md run as written.

Every ```sh (or bash/shell) block is run by bash, in a scratch folder holding the files
the examples name (notes.txt, prompts.jsonl, a git repository with a change, ...), with
the installed `llmcli` on PATH and OPENAI_BASE_URL pointing at a test server of its own
that serves the models the examples name and takes any key. A block passes when every
command in it succeeds, except those whose comment says ``# exit N``: they must fail
with exactly N. A bash ERR trap reports each failing command with its line.

A block that cannot run offline says why on the line before it:
``<!-- no-run: needs a server on localhost:11434 -->``. ```console blocks are
transcripts of interactive sessions, not scripts, and are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from llmcli.testing import MockOpenAIServer

from .conftest import ROOT

DOCS = ("README.md", "docs/usage.md", "docs/recipes.md")
SHELLS = ("sh", "bash", "shell")
MODELS = ("test-model", "gpt-4o-mini", "gpt-4o", "llama3.2")
NO_RUN = re.compile(r"<!--\s*no-run\b(?::\s*(.*?))?\s*-->")
ERR_LINE = re.compile(r"^docs-run: line (\d+): exit (\d+)$", re.M)
EXPECTED_EXIT = re.compile(r"#.*\bexit (\d+)\b")


@dataclass
class Block:
    """One fenced shell block: where it is, its text, and why it is not run (if so)."""

    doc: str
    line: int
    text: str
    no_run: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def shell_blocks(doc: str) -> Iterator[Block]:
    """The fenced shell blocks of ``doc``, with the no-run marker that precedes each."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^(`{3,})\s*(\w*)", lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith(fence.group(1)))
        if fence.group(2) in SHELLS:
            before = [text for text in lines[max(index - 3, 0):index] if text.strip()]
            marker = NO_RUN.search(before[-1]) if before else None
            yield Block(doc, index + 1, "\n".join(lines[index + 1:end]) + "\n",
                        (marker.group(1) or "marked no-run") if marker else None)
        index = end + 1


BLOCKS = [block for doc in DOCS for block in shell_blocks(doc)]
RUNNABLE = [block for block in BLOCKS if block.no_run is None]


def test_the_docs_have_shell_blocks_and_most_of_them_run() -> None:
    """Marking a block no-run is for the few that need the network, a real model or a
    person; the rest run (below)."""
    assert len(BLOCKS) >= 15
    assert len(RUNNABLE) >= 3 * len(BLOCKS) // 5, [b.id for b in BLOCKS if b.no_run]
    assert all(b.no_run != "marked no-run" for b in BLOCKS), "say why a block cannot run"


@pytest.fixture(scope="module")
def docs_server() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(models=MODELS) as server:
        yield server


def scratch_folder(path: Path) -> None:
    """The files the examples read, in a git repository with an uncommitted change."""
    (path / "notes.txt").write_text("Monday: shipped the parser.\nTuesday: fixed the tests.\n")
    (path / "prompt.txt").write_text("Say hello\n")
    (path / "lines.txt").write_text("good morning\ngood night\n")
    (path / "prompts.jsonl").write_text('{"id": "a", "prompt": "one"}\n{"id": "b", "prompt": "two"}\n')
    shutil.copytree(ROOT / "completions", path / "completions")
    (path / "docs").mkdir()
    for name in ("exit-codes.md", "output.md"):
        shutil.copy(ROOT / "docs" / name, path / "docs" / name)
    person = ('{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type":'
              ' "integer"}}, "required": ["name", "age"], "additionalProperties": false}\n')
    (path / "person.json").write_text(person)
    (path / "person.schema.json").write_text(person)
    (path / "invoice.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    (path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9")
    script = path / "my-script.sh"
    script.write_text('#!/bin/sh\nllmcli chat "from my script" >/dev/null\n')
    script.chmod(0o755)
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "notes.txt"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "notes"], cwd=path, check=True)
    with (path / "notes.txt").open("a") as notes:
        notes.write("Wednesday: wrote the docs.\n")


def failures(block: Block, stderr: str) -> list[str]:
    """Commands that failed though the doc does not say they should (or with another
    code than it says)."""
    lines = block.text.splitlines()
    wrong = []
    for number, code in ERR_LINE.findall(stderr):
        said = [m.group(1) for text in lines[max(int(number) - 2, 0):int(number)]
                if (m := EXPECTED_EXIT.search(text))]
        if code not in said:
            wrong.append(f"line {number} ({lines[int(number) - 1].strip()!r}) exited {code}")
    return wrong


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_shell_block_runs(block: Block, docs_server: MockOpenAIServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    scratch_folder(work)
    env = dict(os.environ, OPENAI_BASE_URL=docs_server.base_url, OPENAI_API_KEY="sk-docs",
               url=docs_server.base_url, PATH=f"{Path(sys.executable).parent}{os.pathsep}"
               f"{os.environ['PATH']}", LLMCLI_STDIN_WAIT="0.2")
    script = ('trap \'s=$?; echo "docs-run: line $LINENO: exit $s" >&2\' ERR\nset -o pipefail\n'
              + block.text)
    proc = subprocess.Popen(["bash", "-c", script], cwd=work, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:   # a block may leave a background server behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    err = re.sub(r"docs-run: line (\d+)",
                 lambda m: f"docs-run: line {int(m.group(1)) - 2}", err)   # the 2-line prologue
    assert not failures(block, err), f"{block.id}:\n{block.text}\nstdout:\n{out}\nstderr:\n{err}"
