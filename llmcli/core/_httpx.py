"""httpx, imported without the two costs a one-shot command never uses.

- ``import httpx`` also imports httpx's own command-line tool (``httpx._main``: click,
  rich, pygments, 40-50 ms) whenever those are installed, and Typer installs them. A
  stand-in module takes its place during the import; its ``main`` loads the real one.
- ``httpx.Client()`` loads certifi's CA bundle (~20 ms) when it is made, even when the
  base URL is plain http (a local server). :func:`default_tls_context` is the same
  context with the bundle loaded at the first TLS handshake instead.

Import this module before httpx (llmcli/core/client.py does).

docs/performance.md has the measurements.
"""

from __future__ import annotations

import os
import ssl
import sys
import types
from typing import Any


def _import_httpx() -> None:
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def main(*args: Any, **kwargs: Any) -> Any:
        """httpx's command-line tool, imported when someone really runs it."""
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]
        from httpx._main import main as real_main

        return real_main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in
    try:
        import httpx  # noqa: F401
    finally:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]   # a later `import httpx._main` gets the real one


_import_httpx()


class LazyTrustContext(ssl.SSLContext):
    """What ``httpx.Client(verify=True)`` builds (certifi's CAs, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set), loading the CAs just before the first handshake."""

    _cas_loaded = False

    def _load_cas(self) -> None:
        if self._cas_loaded:
            return
        if os.environ.get("SSL_CERT_FILE"):
            self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
        elif os.environ.get("SSL_CERT_DIR"):
            self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
        else:
            import certifi

            self.load_verify_locations(cafile=certifi.where())
        self._cas_loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:   # sync httpcore
        self._load_cas()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> Any:      # asyncio and anyio
        self._load_cas()
        return super().wrap_bio(*args, **kwargs)


def default_tls_context() -> ssl.SSLContext:
    """A verifying client context, as ``ssl.create_default_context`` makes one."""
    context = LazyTrustContext(ssl.PROTOCOL_TLS_CLIENT)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context
