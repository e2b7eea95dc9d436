"""`llmcli batches`: the remote batch jobs on the server, grouped by llmcli job."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from . import common as c
from .env import current
from .errors import safe, state
from .output import dumps

LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="Look at this many of the newest batches.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Also list batches llmcli did not tag (made by other tools, or an API without metadata).")]
COLUMNS = ("job", "part", "batch", "status", "done", "total", "created")


def batches(
    limit: LimitOpt = 100,
    all_: AllOpt = False,
    json_out: c.JsonOut = False,
    profile: c.Profile = None,
    base_url: c.BaseUrl = None,
    timeout: c.Timeout = None,
    retries: c.Retries = None,
) -> None:
    """List the server's batches, newest first, with the llmcli job and part each runs
    (`llmcli batch --remote` tags them). --json prints them as a JSON array."""
    state.json_errors = json_out
    settings = c.settings_for(profile=profile, base_url=base_url, timeout=timeout,
                              retries=retries)
    from ..batch.remote.providers import engine_for

    api, _ = engine_for(c.client_options(settings), None)
    rows: list[dict[str, Any]] = []
    with api:
        for batch in api.each_batch():
            if len(rows) >= limit:
                break
            row = _row(batch)
            if all_ or row["job"] is not None:
                rows.append(row)
    out = current().stdout
    if out is not None:
        out.write(safe(dumps(rows)) + "\n" if json_out else _table(rows))
        out.flush()


def _row(batch: dict[str, Any]) -> dict[str, Any]:
    from ..batch.remote.state import as_dict

    meta, counts = as_dict(batch.get("metadata")), as_dict(batch.get("request_counts"))
    done = (counts.get("completed") or 0) + (counts.get("failed") or 0)
    created = batch.get("created_at")
    when = None
    if isinstance(created, (int, float)):
        import datetime

        when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    return {"job": meta.get("llmcli_job"), "part": meta.get("llmcli_part"),
            "batch": batch.get("id"), "status": batch.get("status"), "done": done,
            "total": counts.get("total"), "created": when}


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [["-" if r[k] is None else str(r[k]) for k in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n"
                   for row in cells)


def register(app: typer.Typer) -> None:
    """Add `batches` to the app."""
    from .helptext import command_settings

    app.command("batches", **command_settings())(batches)
