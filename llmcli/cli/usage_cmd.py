"""`llmcli usage`: what the usage log says was used and spent."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import click
import typer

from . import common as c
from .errors import state
from .output import Out, dumps

Since = Annotated[Optional[str], typer.Option("--since", metavar="WHEN", help="Only requests since WHEN: 7d, 12h, 2w, or a date such as 2026-11-01 (UTC).")]
By = Annotated[str, typer.Option("--by", click_type=click.Choice(("day", "model", "profile")), help="Group the rows by day (UTC), model or profile.")]


def usage(since: Since = None, by: By = "day", json_out: c.JsonOut = False) -> None:
    """Sum the usage log: requests, errors, tokens and cost, per day, model or profile.

    Every request llmcli sends is logged (never its prompt or reply unless
    `log_content: true`; `log: false` turns the log off). See `llmcli docs cost`."""
    from ..usage.log import db_path
    from ..usage.report import parse_since, query, table

    state.json_errors = json_out
    try:
        start = parse_since(since, time.time()) if since else None
    except (ValueError, OverflowError):      # OverflowError: 0001-01-01T00:00+14:00
        raise typer.BadParameter(f"{since!r} is not 7d, 12h, 2w or a date like 2026-11-01",
                                 param_hint="--since") from None
    from .env import current

    data = query(db_path(current().environ), by, start)
    out = Out()
    out.write(dumps(data) + "\n" if json_out else table(data))
    out.flush()


def register(app: typer.Typer) -> None:
    """Add `usage` to the app."""
    from .helptext import command_settings

    app.command("usage", **command_settings())(usage)
