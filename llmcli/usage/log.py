"""The usage log: one SQLite row per request, in the user's data directory.

Many llmcli processes write at once (a batch beside one-shot chats in other shells),
so the database runs in WAL mode (readers never block the writer, a commit is one
append) with ``synchronous=NORMAL`` (no fsync per commit; a crash loses at most the
last commits, never the file) and a 30 s busy timeout, so a writer waits for another
instead of failing. A one-shot command writes its one row in one transaction. On
Python 3.12+ a connection does not checkpoint when it closes
(``SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE``): otherwise the last process to close copies the
WAL into the database, fsyncs it and deletes the WAL, and the next one creates and
syncs a new WAL, two or three fsyncs per `llmcli chat` that cost 1 to 30 ms on a busy
disk. The WAL then stays beside the database, and SQLite's automatic checkpoint (every
1000 pages, some 40,000 rows) folds it in. Batch hands rows to :class:`BackgroundLog`, a thread that writes up to ``BATCH_ROWS`` rows per
transaction, so the event loop never waits for the disk or another process's lock.

Never written: prompts and replies (unless ``log_content: true``), keys, headers.
A log that cannot be written costs one warning, never the command's result.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

SCHEMA_VERSION = 1
BATCH_ROWS = 512
FLUSH_SECONDS = 0.5
BUSY_MS = 30_000
COLUMNS = ("ts", "command", "profile", "model", "status", "error", "prompt_tokens",
           "completion_tokens", "cached_tokens", "cost", "latency_ms", "attempts",
           "request_id", "batch", "item", "prompt", "reply")
DDL = """
CREATE TABLE IF NOT EXISTS requests (
    id                INTEGER PRIMARY KEY,
    ts                REAL NOT NULL,     -- Unix time (UTC) the request finished
    command           TEXT NOT NULL,     -- chat, stream, interactive, batch
    profile           TEXT,              -- the config profile, NULL for none
    model             TEXT,              -- the model the server reported (else asked for)
    status            TEXT NOT NULL,     -- ok, or the error kind (rate_limit, timeout, ...)
    error             TEXT,              -- the error message, NULL when ok
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cached_tokens     INTEGER,
    cost              REAL,              -- USD, NULL when the price is unknown
    latency_ms        INTEGER,
    attempts          INTEGER,
    request_id        TEXT,
    batch             TEXT,              -- batch: the output file (or '-'), else NULL
    item              TEXT,              -- batch: the item's id
    prompt            TEXT,              -- only with log_content: true
    reply             TEXT               -- only with log_content: true
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
"""
_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def data_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The platform's user data directory for llmcli."""
    env = os.environ if environ is None else environ
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    if sys.platform == "win32":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / "llmcli"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "llmcli"
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "llmcli"


def db_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The usage database: ``$LLMCLI_USAGE_DB``, else ``usage.db`` in the data dir."""
    env = os.environ if environ is None else environ
    return Path(env["LLMCLI_USAGE_DB"]) if env.get("LLMCLI_USAGE_DB") else data_dir(env) / "usage.db"


def connect(path: Path) -> Any:
    """An open connection with the schema in place (created on first use)."""
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=BUSY_MS / 1000, isolation_level=None,
                         check_same_thread=False)
    no_checkpoint = getattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE", None)
    if no_checkpoint is not None:    # Python 3.12+: see the module docstring
        db.setconfig(no_checkpoint, True)  # type: ignore[attr-defined]  # 3.12+, checked above
    if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        _create(db)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _create(db: Any) -> None:
    """The table, WAL mode and the version, once, whoever of many processes is first."""
    import sqlite3

    for _ in range(50):   # changing the journal mode is not covered by busy_timeout
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            import time

            time.sleep(0.05)
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in DDL.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def row(**fields: Any) -> tuple[Any, ...]:
    """A row in column order; a column not given is NULL."""
    return tuple(_cell(fields.get(name)) for name in COLUMNS)


def _cell(value: Any) -> Any:
    """A value SQLite can bind. What a JSONL line or a server sent may be anything (a
    `model` that is an object, 10**30 tokens); one such row must not fail the insert
    of its whole transaction, and with it the log of the rest of the run."""
    if value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if -2**63 <= value < 2**63 else None
    import json

    return json.dumps(value, default=str)[:1000]


def write(path: Path, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append ``rows`` in one transaction."""
    db = connect(path)
    try:
        insert(db, rows)
    finally:
        db.close()


def insert(db: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append ``rows`` on an open connection, in one transaction."""
    import sqlite3

    try:
        _insert_once(db, rows)
    except (sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError):
        # a value SQLite cannot bind (batch builds its rows without row()): once more,
        # each value made bindable, rather than lose this and every later row
        _insert_once(db, [tuple(map(_cell, r)) for r in rows])


def _insert_once(db: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_INSERT, rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class BackgroundLog:
    """Rows handed over from the event loop, written by a thread, ``BATCH_ROWS`` (or
    whatever arrived within ``FLUSH_SECONDS``) per transaction. :meth:`put` only appends
    to a list under a lock: waking the thread for every row would hand the GIL back and
    forth once per item, which costs a fast batch more than the writes themselves.
    :meth:`close` writes the rest and waits."""

    def __init__(self, path: Path, on_error: Callable[[str], None]) -> None:
        import queue
        import threading

        self.path, self.on_error = path, on_error
        self.rows_written = 0
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._queue: "queue.SimpleQueue[Optional[list[tuple[Any, ...]]]]" = queue.SimpleQueue()
        self._thread: Any = threading.Thread(target=self._run, name="llmcli-usage-log",
                                             daemon=True)
        self._thread.start()

    def put(self, values: tuple[Any, ...]) -> None:
        """Queue one row (no I/O, and no wake-up, on the caller's thread)."""
        with self._lock:
            self._pending.append(values)
            if len(self._pending) < BATCH_ROWS:
                return
            full, self._pending = self._pending, []
        self._queue.put(full)

    def close(self) -> None:
        """Write every queued row, then stop the thread."""
        self._queue.put(self._take())
        self._queue.put(None)
        self._thread.join()

    def _take(self) -> list[tuple[Any, ...]]:
        with self._lock:
            rows, self._pending = self._pending, []
        return rows

    def _run(self) -> None:
        import queue

        db, failed = None, False
        while True:
            try:
                rows = self._queue.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                rows = self._take()     # a slow run: write what came within the interval
            if rows is None:
                break
            if not rows or failed:
                continue
            try:
                db = db or connect(self.path)
                insert(db, rows)
                self.rows_written += len(rows)
            except Exception as exc:    # the log must never cost the run
                failed = True
                self.on_error(f"usage log {self.path}: {exc}; no more rows are logged in this run")
        if db is not None:
            db.close()
