"""The docs cannot fall behind the binary: every command and option that the real
`llmcli --help` (and each command's `--help`) lists must be mentioned in docs/."""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from .conftest import ROOT, run_cli

DOCS = ROOT / "docs"


def parse_help(text: str) -> tuple[list[str], list[str]]:
    """The option names and subcommand names in Click's plain help. Entries are
    indented by exactly two spaces; wrapped help text is indented further."""
    options: list[str] = []
    commands: list[str] = []
    section = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":").strip().lower()
            continue
        entry = re.match(r"^  (\S.*?)(?:\s{2,}|$)", line)
        if entry is None:
            continue
        if section == "options":
            options += re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", entry.group(1))
        elif section == "commands":
            commands.append(entry.group(1).split()[0])
    return options, commands


def walk(path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(command path, its options) for llmcli and every command under it."""
    done = run_cli(*path, "--help")
    assert done.returncode == 0, done.stderr
    options, commands = parse_help(done.stdout)
    assert options, f"no options parsed from `llmcli {' '.join(path)} --help`"
    yield path, options
    for name in commands:
        yield from walk(path + (name,))


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def mentioned(name: str, text: str) -> bool:
    """``--json`` in the text as a word of its own (not as part of ``--json-x``)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def command_mentioned(path: tuple[str, ...], text: str) -> bool:
    """``llmcli config init`` or ```config init`` (a code span) in the text."""
    words = " ".join(path)
    return f"llmcli {words}" in text or f"`{words}" in text


@pytest.fixture(scope="module")
def binary() -> list[tuple[tuple[str, ...], list[str]]]:
    return list(walk())


def test_the_help_is_parsed_the_way_it_is_printed(binary):
    paths = [p for p, _ in binary]
    assert {(), ("chat",), ("stream",), ("models",), ("config",), ("config", "init"),
            ("config", "show"), ("config", "path")} <= set(paths)
    chat = dict(binary)[("chat",)]
    assert {"-m", "--model", "-i", "--interactive", "--conversation", "--max-time",
            "-h", "--help"} <= set(chat)
    assert "--version" in dict(binary)[()]


def test_every_command_is_documented(binary):
    text = docs_text()
    missing = [" ".join(p) for p, _ in binary if p and not command_mentioned(p, text)]
    assert not missing, f"commands not mentioned in docs/: {missing}"


def test_every_option_is_documented(binary):
    text = docs_text()
    missing = sorted({f"{' '.join(p) or 'llmcli'} {name}" for p, options in binary
                      for name in options if not mentioned(name, text)})
    assert not missing, f"options not mentioned in docs/: {missing}"


def test_an_undocumented_option_would_be_caught():
    help_text = ("Usage: llmcli chat [OPTIONS]\n\nOptions:\n"
                 "  -m, --model TEXT      Model id.\n"
                 "  --brand-new-flag      Wrapped help that mentions\n"
                 "                        --not-an-option in passing.\n")
    options, _ = parse_help(help_text)
    assert options == ["-m", "--model", "--brand-new-flag"]
    text = docs_text()
    assert [o for o in options if not mentioned(o, text)] == ["--brand-new-flag"]
    assert not mentioned("--json-lines", "`--json` only")
