"""Children that a test sends SIGINT to must start with SIGINT at its default
disposition: a process started from a background job (``cmd &`` in a script, as CI
does) inherits SIGINT *ignored*, and Python then never raises KeyboardInterrupt, so
the signal would silently do nothing and the test would hang or fail."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for subprocess: SIGINT back to its default before exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
