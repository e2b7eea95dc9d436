"""The docs cannot fall behind the binary: every command that the real `llmcli --help`
lists must be mentioned in docs/, and every option of each command must be in that
command's own section of docs/usage.md (docs/batch.md for batch), not just somewhere."""

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


# Where each command's options are documented. A command without an entry uses the
# section of the nearest command above it (`config init` -> `config`).
OWN_FILE = {("batch",): "batch.md"}
# `llmcli stream` is documented as "As `chat`": its section plus chat's.
SHARES = {("stream",): ("chat",)}
# -h/--help is documented once, among the global options, for every command.
EVERYWHERE = ("-h", "--help")


def usage_sections(text: str) -> dict[str, str]:
    """The level-2 sections of usage.md by heading, each with its ### subsections."""
    parts = re.split(r"(?m)^## ", text)
    return {part.splitlines()[0].strip(): part for part in parts[1:]}


def section_for(path: tuple[str, ...]) -> str:
    """The text that documents the options of ``path``."""
    if path in OWN_FILE:
        return (DOCS / OWN_FILE[path]).read_text(encoding="utf-8")
    sections = usage_sections((DOCS / "usage.md").read_text(encoding="utf-8"))
    if not path:
        return sections["Global options"]
    for depth in range(len(path), 0, -1):
        words = " ".join(path[:depth])
        found = [body for head, body in sections.items()
                 if re.match(rf"`llmcli {re.escape(words)}(?:[ `])", head)]
        if found:
            shared = SHARES.get(path[:depth])
            return found[0] + (section_for(shared) if shared else "")
    raise AssertionError(f"no section for `llmcli {' '.join(path)}` in docs/usage.md")


def test_every_option_is_documented_in_its_commands_section(binary):
    missing = sorted({f"{' '.join(p) or 'llmcli'} {name}" for p, options in binary
                      for name in options if name not in EVERYWHERE
                      and not mentioned(name, section_for(p))})
    assert not missing, f"options not documented in their command's section: {missing}"
    assert all(mentioned(name, section_for(())) for name in EVERYWHERE)


def test_an_option_documented_for_another_command_would_be_caught():
    assert mentioned("--system", section_for(("chat",)))
    assert not mentioned("--system", section_for(("models",)))
    assert not mentioned("--version", section_for(("config", "show")))
    assert mentioned("--force", section_for(("config", "init")))
    assert mentioned("--messages", section_for(("stream",)))      # "As `chat`"
    assert mentioned("--concurrency", section_for(("batch",)))


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


def test_every_error_type_is_documented_in_output_md():
    """`--json` errors carry `error.type`: each value the code can give is in the table."""
    from llmcli.core.errors import _KIND

    errors_section = (ROOT / "docs" / "output.md").read_text().split("## Errors", 1)[1]
    type_row = next(line for line in errors_section.splitlines() if line.startswith("| `type`"))
    missing = [kind for kind in _KIND.values() if f"`{kind}`" not in type_row]
    assert missing == []
