"""`llmcli usage`: the usage log summed by day, model or profile."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Optional

from ..core.errors import FileWriteError

GROUPS = {"day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
          "model": "COALESCE(model, '(unknown)')",
          "profile": "COALESCE(profile, '(none)')"}
_RELATIVE = re.compile(r"^(\d+)([hdw])$")
_UNIT = {"h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float) -> float:
    """``7d``, ``12h``, ``2w`` (before ``now``) or a date ``2026-11-01`` (UTC midnight)
    or an ISO time, as Unix time; raises ``ValueError``."""
    match = _RELATIVE.match(text.strip())
    if match:
        # 99999999d reaches before the epoch (and past what a date can hold): all of it
        return now - min(int(match.group(1)) * _UNIT[match.group(2)], now)
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    start = value.timestamp()
    _iso(start)     # raises ValueError when UTC takes it out of a date's years (9999-12-31-14:00)
    return start


def query(path: Path, by: str, since: Optional[float]) -> dict[str, Any]:
    """Rows per group and the totals, as the stable `usage --json` object."""
    from .log import connect

    sums = ("COUNT(*), SUM(status = 'ok'), SUM(status != 'ok'), COALESCE(SUM(prompt_tokens), 0), "
            "COALESCE(SUM(completion_tokens), 0), SUM(cost), SUM(status = 'ok' AND cost IS NULL)")
    where, args = ("WHERE ts >= ?", (since,)) if since is not None else ("", ())
    rows, total = [], None
    if path.exists():
        import sqlite3

        try:
            db = connect(path)
            try:
                grouped = db.execute(f"SELECT {GROUPS[by]} AS k, {sums} FROM requests {where} "
                                     "GROUP BY k ORDER BY k", args).fetchall()
                total = db.execute(f"SELECT NULL, {sums} FROM requests {where}", args).fetchone()
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:   # not a database, another schema, a folder
            raise FileWriteError(f"cannot read the usage log {path}: {exc} (move it away: the "
                                 "next request starts a new one)", path=str(path)) from None
        rows = [_entry(r) for r in grouped]
    return {"by": by, "since": _iso(since), "database": str(path), "rows": rows,
            "total": _entry(total) if total and total[1] else _entry((None, 0, 0, 0, 0, 0, None, 0))}


def _entry(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"key": r[0], "requests": r[1], "ok": r[2] or 0, "errors": r[3] or 0,
            "prompt_tokens": r[4], "completion_tokens": r[5],
            "cost": round(r[6], 6) if r[6] is not None else None, "unpriced": r[7] or 0}


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def table(data: dict[str, Any]) -> str:
    """The report as an aligned text table, totals last."""
    head = (data["by"], "requests", "errors", "input tok", "output tok", "cost USD")
    lines = [head] + [_cells(r) for r in data["rows"]] + [_cells({**data["total"], "key": "total"})]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(line, widths))) for line in lines]
    unpriced = data["total"]["unpriced"]
    if unpriced:
        out.append(f"({unpriced} request(s) of models with no known price are not in the cost; "
                   "add them under `prices:` in the config)")
    return "\n".join(out) + "\n"


def _cells(r: dict[str, Any]) -> tuple[str, ...]:
    from ..core.sanitize import neutralize

    cost = "?" if r["cost"] is None else f"{r['cost']:.4f}"
    # the model is what a server said it is: its escape sequences never reach a terminal
    return (neutralize(str(r["key"])).replace("\n", "\\n").replace("\t", " "), f"{r['requests']:,}", f"{r['errors']:,}", f"{r['prompt_tokens']:,}",
            f"{r['completion_tokens']:,}", cost)
