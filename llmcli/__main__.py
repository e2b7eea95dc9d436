"""Entry point: `llmcli` and `python -m llmcli`.

`--version` is answered before Typer or the HTTP stack are imported: scripts call it
often, and it should cost no more than starting Python. So are the profile and model
names that shell completion asks for on every TAB (llmcli/cli/complete.py).
"""

from __future__ import annotations

import os
import sys

# No `typing` import here (~4 ms): with postponed annotations, `list[str] | None` is
# never evaluated, and the --version path imports nothing else.


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with its status."""
    args = sys.argv[1:] if argv is None else argv
    kind = os.environ.get("_LLMCLI_COMPLETE_VALUES")
    if kind:   # shell completion asks for profiles or models: no Typer, no HTTP
        from .cli.complete import main as complete

        sys.exit(complete(kind, args))
    if args in (["--version"], ["-V"]):
        from . import __version__

        sys.stdout.write(f"llmcli {__version__}\n")
        sys.exit(0)
    from .cli.app import run
    from .cli.env import Environment

    sys.exit(run(args, Environment.from_process(args)))


if __name__ == "__main__":
    main()
