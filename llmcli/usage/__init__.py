"""Cost and usage: the price table, cost from usage, the SQLite usage log, reports,
and the token/cost estimate of `batch --dry-run`.

Imported by ``cli`` and ``batch`` only, and lazily: nothing here is on the start-up
path of a command, and ``core`` never imports it.
"""
