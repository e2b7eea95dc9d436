"""Entry point: `llmcli` and `python -m llmcli`.

`--version` is answered before Typer or the HTTP stack are imported: scripts call it
often, and it should cost no more than starting Python.
"""

from __future__ import annotations

import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> None:
    """Run the CLI and exit with its status."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        from . import __version__

        sys.stdout.write(f"llmcli {__version__}\n")
        sys.exit(0)
    from .cli.app import run

    sys.exit(run(args))


if __name__ == "__main__":
    main()
