"""`llmcli config`: init, show, path."""

from __future__ import annotations

from typing import Annotated

import typer

from . import common as c
from .env import current
from .errors import state
from .helptext import Command, Group
from .output import Out, dumps

app = typer.Typer(help="Create and inspect the config file.", no_args_is_help=True, cls=Group,
                  rich_markup_mode=None, suggest_commands=False)


@app.command("init", cls=Command)
def init(force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False) -> None:
    """Write a commented config file (mode 0600) to the config path."""
    from ..config.files import config_path, write_private
    from ..config.template import TEMPLATE

    path = config_path(state.config, current().environ)
    write_private(path, TEMPLATE, force=force)
    typer.echo(f"llmcli: wrote {path}", err=True)
    Out().write(f"{path}\n")


@app.command("show", cls=Command, short_help="Print the effective settings, the key masked.")
def show(json_out: c.JsonOut = False, profile: c.Profile = None) -> None:
    """Print the effective settings and where each came from; the key is masked."""
    state.json_errors = json_out
    settings = c.settings_for(profile=profile)
    rows = settings.shown(typed=json_out)
    out = Out()
    if json_out:
        out.write(dumps({"config_file": str(settings.path), "config_file_found": settings.file_found,
                         "profile": settings.profile, "profiles": settings.profiles,
                         "settings": {n: {"value": v, "source": s} for n, v, s in rows}}) + "\n")
    else:
        found = "" if settings.file_found else " (not found)"
        out.write(f"# config file: {settings.path}{found}\n")
        out.write(f"# profile: {settings.profile or '(none)'}\n")
        width = max(len(n) for n, _, _ in rows)
        vwidth = min(max(len(v) for _, v, _ in rows), 40)
        out.write("".join(f"{n:<{width}}  {v:<{vwidth}}  # {s}\n" for n, v, s in rows))
    out.flush()


@app.command("path", cls=Command)
def path() -> None:
    """Print the config file's path."""
    from ..config.files import config_path

    Out().write(f"{config_path(state.config, current().environ)}\n")
