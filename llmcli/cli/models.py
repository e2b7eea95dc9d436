"""`llmcli models`: the models the server offers."""

from __future__ import annotations

import typer

from . import common as c
from .errors import state
from .output import Out, dumps


def models(
    json_out: c.JsonOut = False,
    profile: c.Profile = None,
    base_url: c.BaseUrl = None,
    timeout: c.Timeout = None,
    max_time: c.MaxTime = None,
    retries: c.Retries = None,
) -> None:
    """List model ids, one per line, sorted. --json prints the model objects as a JSON array."""
    state.json_errors = json_out
    settings = c.settings_for(profile=profile, base_url=base_url, timeout=timeout,
                              max_time=max_time, retries=retries)
    from ..core.client import Client

    with Client(c.client_options(settings)) as client:
        found = sorted(client.list_models(), key=lambda m: str(m.get("id", "")))
    out = Out()
    if json_out:
        out.write(dumps(found) + "\n")
    else:
        out.write("".join(f"{m.get('id', '')}\n" for m in found))
    out.flush()


def register(app: typer.Typer) -> None:
    """Add `models` to the app."""
    from .helptext import command_settings

    app.command("models", **command_settings())(models)
