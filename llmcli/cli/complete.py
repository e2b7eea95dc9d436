"""Values for shell completion, read from the config file: profile names and models.

The completion scripts in completions/ run ``_LLMCLI_COMPLETE_VALUES=profile llmcli
[--config FILE]`` on TAB after ``-p``/``--profile`` (``model`` after ``-m``/``--model``).
``llmcli/__main__.py`` sends that here before Typer or httpx are imported: this path
reads one YAML file and never touches the network. Any problem prints nothing, since a
TAB must never spill an error into the command line being typed.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

ENV = "_LLMCLI_COMPLETE_VALUES"


def config_values(kind: str, config: Optional[str] = None) -> list[str]:
    """``profile``: the profile names; ``model``: every model the file names."""
    from ..config.files import config_path, load_config_file

    try:
        cfg = load_config_file(config_path(config))
    except Exception:   # a broken file: offer nothing rather than an error
        return []
    data: dict[str, Any] = cfg.data if cfg is not None else {}
    profiles: dict[str, Any] = data["profiles"] if isinstance(data.get("profiles"), dict) else {}
    if kind == "profile":
        return sorted(str(name) for name in profiles)
    if kind == "model":
        models = [data.get("model")] + [p.get("model") for p in profiles.values()
                                         if isinstance(p, dict)]
        return sorted({m for m in models if isinstance(m, str) and m})
    return []


def _printable(name: str) -> bool:
    """One line a shell can offer: no line break or other control character (a name
    with one is skipped, never offered cut in two)."""
    return name.isprintable()


def main(kind: str, args: list[str]) -> int:
    """Print the values, one per line; ``--config FILE`` in ``args`` picks the file."""
    config = None
    if "--config" in args[:-1]:
        config = args[args.index("--config") + 1]
    values = [v for v in config_values(kind, config) if _printable(v)]
    sys.stdout.write("".join(f"{v}\n" for v in values))
    return 0
