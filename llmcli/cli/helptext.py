"""Help that teaches: argument descriptions, the global flags, the docs command.

Every command is built with :class:`Command`, which adds to Typer's plain help what a
reader of one command's ``--help`` needs and would otherwise not see: what its
arguments mean (Typer 0.25 on Click 8.3+ loses an argument's ``help=``: Click's own
``Argument`` now has a ``help`` it resets), and that ``-v``/``--debug`` are accepted
anywhere on the line.
"""

from __future__ import annotations

import re
from typing import Any

import click
from typer.core import TyperCommand, TyperGroup

ARGUMENTS = {
    "prompt": "The prompt. '-': read it all from stdin. Piped stdin is appended after "
              "it (waited for up to 10s: LLMCLI_STDIN_WAIT; see llmcli docs usage).",
    "input": "File of prompts: plain text (one per line), JSONL, or OpenAI Batch API "
             "requests; '-' reads stdin.",
    "topic": "A page: usage, config, output, exit-codes, batch, providers, recipes, "
             "... (none: list them).",
}

GLOBAL_OPTIONS = [
    ("-v, --verbose", "Log requests, timings and retries on stderr (anywhere on the "
                      "line)."),
    ("--debug", "Tracebacks and debug logs on stderr (anywhere on the line)."),
    ("--config FILE", "Before the command: llmcli --config FILE chat ..."),
    ("--log-file FILE", "Before the command, as --config (llmcli --help)."),
]
# Typer shows a default given as text as "[default: (600)]", Click's own as
# "[default: 16]": one style, Click's.
_TEXT_DEFAULT = re.compile(r"default:(\s+)\(([^()]*)\)")


class Command(TyperCommand):
    """A Typer command whose help shows its arguments' meaning and the global flags."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.params:
            if isinstance(param, click.Argument) and not getattr(param, "help", None):
                param.help = ARGUMENTS.get(param.name or "")
        start = len(formatter.buffer)
        super().format_options(ctx, formatter)
        one_default_style(formatter, start)
        with formatter.section("Global options"):
            formatter.write_dl(GLOBAL_OPTIONS)


class Group(TyperGroup):
    """A Typer group whose help writes defaults in Click's one style and lists each
    command with its whole first sentence (Click cuts one past 45 characters with
    "...", mid-phrase)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        start = len(formatter.buffer)
        super().format_options(ctx, formatter)
        one_default_style(formatter, start)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.short_help and command.help:
                command.short_help = first_sentence(command.help)
        super().format_commands(ctx, formatter)


def first_sentence(text: str) -> str:
    """The first sentence of a help text (its first paragraph when it has no full stop)."""
    paragraph = " ".join(text.split("\n\n")[0].replace("\b", "").split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[:end + 1]


def one_default_style(formatter: click.HelpFormatter, start: int) -> None:
    """Rewrite Typer's ``[default: (X)]`` as ``[default: X]`` in what was written
    since ``start``."""
    written = "".join(formatter.buffer[start:])   # a default may wrap across lines
    formatter.buffer[start:] = [_TEXT_DEFAULT.sub(r"default:\1\2", written)]


def command_settings(**extra: Any) -> dict[str, Any]:
    """``app.command(...)`` keyword arguments shared by every llmcli command."""
    return {"cls": Command, **extra}
