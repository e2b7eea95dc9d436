"""`batch`'s money side: the accounting of a run (prices, --max-cost, usage log) and
`--dry-run`, kept apart from batch.py and imported only by the batch command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import click

from .env import current
from .errors import safe
from .output import Out, warn


def price_table(settings: Any) -> Any:
    """The shipped prices with the config's ``prices:``; a bad entry is a config error."""
    from ..core.errors import ConfigError
    from ..usage.prices import PriceError, load_table

    try:
        return load_table(settings["prices"])
    except PriceError as exc:
        raise ConfigError(str(exc), key="prices") from None


def accounting(settings: Any, max_cost: Optional[float], defaults: Any,
               output: Optional[str]) -> Any:
    """The run's :class:`~llmcli.batch.accounting.RunAccounting`."""
    from ..batch.accounting import RunAccounting
    from ..batch.budget import Budget

    prices = price_table(settings)
    budget = None
    if max_cost is not None:
        if defaults.model and prices.lookup(defaults.model) is None:
            raise click.UsageError(f"--max-cost: no price for model {defaults.model!r}; add it "
                                   "under `prices:` in the config (llmcli docs cost)")
        budget = Budget(max_cost, prices)
    log = None
    if settings["log"] is not False:
        from ..usage.log import BackgroundLog, db_path

        log = BackgroundLog(db_path(settings.environ), warn)
    return RunAccounting(prices, budget=budget, log=log, profile=settings.profile,
                         batch=str(Path(output).absolute()) if output else "-",
                         log_content=bool(settings["log_content"]), redact=safe)


def dry_run(input: str, input_format: str, defaults: Any, settings: Any,
            summary_json: Optional[Path]) -> None:
    """Read the whole input and print what running it would take; send nothing."""
    from ..batch import reader
    from ..batch.job import spool
    from ..usage.estimate import describe, estimate

    path, spooled = input, None
    if input == "-":
        path = spooled = spool(current().stdin_bytes)
    try:
        try:
            fmt = reader.detect_format(path) if input_format == "auto" else input_format
            bodies = (item.body for item in reader.read_items(path, fmt, defaults))
            result = estimate(bodies, price_table(settings))
        except OSError as exc:
            raise click.UsageError(f"cannot read {input}: {exc.strerror or exc}") from None
    finally:
        if spooled:
            Path(spooled).unlink(missing_ok=True)
    out = Out()
    out.write("".join(safe(line) + "\n" for line in describe(result)))
    out.flush()
    if summary_json:
        summary_json.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
