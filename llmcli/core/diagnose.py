"""Connection failures that retrying cannot fix, told apart and named at once.

The transports' error mapping (``map_httpx_errors`` in client.py, the aiohttp
transport in aclient.py) asks :func:`diagnose` about a failure before it becomes a
retried "connection failed". Three cases are certain enough to stop at once:

- connection refused on a loopback address: nothing is listening on this machine,
  and no retry in the next few seconds will change that;
- ``https://`` to a server that speaks plain HTTP: either the TLS handshake fails on
  the server's plain-text answer, or (a server that waits for a request line) it
  would hang until the connect timeout; :class:`WatchedSSLSocket` probes the port
  with a plain HTTP request once the handshake has taken :data:`PROBE_AFTER` seconds;
- ``http://`` to a TLS server: the server hangs up on the plain request; a TLS
  handshake probe (no certificate check: only "does it speak TLS") confirms it.

Every probe is bounded by :data:`PROBE_TIMEOUT` and only ever runs after a failure
(or a handshake already slower than a healthy one), so it costs a success nothing.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Optional
from urllib.parse import urlsplit

from .errors import UnreachableError

PROBE_AFTER = 0.75    # a TLS handshake this slow gets a plain-HTTP probe of its port
PROBE_TIMEOUT = 0.5   # each probe's own bound

_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST",
                    "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL", "record layer failure",
                    "wrong version number", "http request")


class PlainHTTPServer(ssl.SSLError):
    """Raised inside a TLS handshake when the server turned out to speak plain HTTP."""


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress   # here: only a failure pays for it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_port(url: str) -> Optional[tuple[str, int]]:
    """The host and port ``url`` connects to."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


# What TLS servers answer a plain HTTP request with (nginx and Cloudflare; Go and
# Caddy): HTTP, but saying the port wants TLS. Such a server is not plain HTTP.
_TLS_PORT_ANSWERS = (b"HTTPS port", b"to an HTTPS server")


def speaks_plain_http(address: Any, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the server at ``address`` answers a plain HTTP request with HTTP (and
    not with the "this port speaks HTTPS" page some TLS servers send)."""
    answer = _plain_answer(address, timeout)
    return answer.startswith(b"HTTP/") and not any(t in answer for t in _TLS_PORT_ANSWERS)


def _plain_answer(address: Any, timeout: float) -> bytes:
    """Up to 4 KiB of the server's answer to ``GET /``, whatever came within ``timeout``."""
    deadline = time.monotonic() + timeout
    answer = b""
    try:
        with socket.create_connection(address[:2], timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: llmcli-probe\r\n\r\n")
            while len(answer) < 4096:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError:   # refused, reset, or the time is up: what came is the answer
        pass
    return answer


def speaks_tls(address: Any, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the server at ``address`` completes (or fails on a certificate) a TLS
    handshake. No certificate is trusted here: nothing is sent over this socket."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(address[:2], timeout=timeout) as sock:
            with context.wrap_socket(sock):
                return True
    except ssl.SSLCertVerificationError:
        return True
    except OSError:
        return False


class WatchedSSLSocket(ssl.SSLSocket):
    """An SSL socket whose handshake, once slower than :data:`PROBE_AFTER`, checks
    whether the server is plain HTTP (which would otherwise wait for a request line
    until the connect timeout, 10 s per attempt) and carries on if it is not."""

    def do_handshake(self, block: bool = False) -> None:
        timeout = self.gettimeout()
        if timeout is not None and timeout <= PROBE_AFTER:
            return super().do_handshake(block)
        started = time.monotonic()
        self.settimeout(PROBE_AFTER)
        try:
            return super().do_handshake(block)
        except socket.timeout:
            if speaks_plain_http(self.getpeername()):
                raise PlainHTTPServer("the server speaks plain HTTP, not TLS") from None
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                raise
            self.settimeout(left)
            return super().do_handshake(block)
        finally:
            self.settimeout(timeout)


def watch_handshakes(context: Any) -> Any:
    """``context`` with :class:`WatchedSSLSocket` handshakes, where it can take them."""
    if isinstance(context, ssl.SSLContext) and type(context).sslsocket_class is ssl.SSLSocket:
        context.sslsocket_class = WatchedSSLSocket
    return context


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _refused(chain: list[BaseException]) -> bool:
    return any(isinstance(e, ConnectionRefusedError) or "Connection refused" in str(e)
               or "Connect call failed" in str(e) for e in chain)


def _not_tls(chain: list[BaseException]) -> bool:
    for e in chain:
        if isinstance(e, PlainHTTPServer):
            return True
        if isinstance(e, ssl.SSLError):
            reason = f"{getattr(e, 'reason', '')} {e}"
            if any(r in reason for r in _NOT_TLS_REASONS):
                return True
    return False


def _hung_up(chain: list[BaseException]) -> bool:
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    return any(s in text for s in ("disconnected without sending", "ServerDisconnected",
                                   "RemoteProtocolError", "illegal status line",
                                   "Invalid HTTP", "BadStatusLine", "ConnectionReset"))


def diagnose(exc: BaseException, base_url: str, shown_url: str, *,
             timed_out: bool = False) -> Optional[UnreachableError]:
    """A clear, non-retryable error for a connection failure retrying cannot fix, or
    ``None`` to let the failure take its ordinary (retried) course."""
    chain = _chain(exc)
    scheme = urlsplit(base_url).scheme
    if _refused(chain) and is_loopback(base_url) and not timed_out:
        return final(f"connection refused: nothing is listening at {shown_url} "
                     "(is the server running, on that port?)")
    address = host_port(base_url)
    if scheme == "https" and address and (_not_tls(chain) or (timed_out and speaks_plain_http(address))):
        return final(f"{shown_url} speaks plain HTTP, not TLS: use http:// in the base URL")
    if scheme == "http" and address and _hung_up(chain) and speaks_tls(address):
        return final(f"{shown_url} speaks TLS (HTTPS), not plain HTTP: use https:// in "
                     "the base URL")
    return None


def final(message: str) -> UnreachableError:
    """A connection error that no retry is made for."""
    return UnreachableError(message)
