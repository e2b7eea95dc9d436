"""Unit tests of the pure parts of core/diagnose.py and cli/hints.py (the end-to-end
cases, through real sockets, are in test_network_failures.py)."""

from __future__ import annotations

import ssl

import pytest

from llmcli.core.diagnose import PlainHTTPServer, diagnose, is_loopback
from llmcli.core.errors import AuthenticationError, NotFoundError, RateLimitError


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:9/v1", True), ("http://127.9.9.9/v1", True),
    ("http://localhost:11434/v1", True), ("http://[::1]:8000/v1", True),
    ("http://api.localhost/v1", True), ("https://api.openai.com/v1", False),
    ("http://10.0.0.5:8000/v1", False), ("http://example.com/v1", False),
    ("not a url", False),
])
def test_is_loopback(url, expected):
    assert is_loopback(url) is expected


def refused() -> Exception:
    exc = ConnectionError("connect failed")
    exc.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return exc


def test_refused_on_loopback_is_final_and_names_the_url():
    found = diagnose(refused(), "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
    assert found is not None and not found.retryable
    assert "nothing is listening at http://127.0.0.1:9/v1" in found.message


def test_refused_elsewhere_is_left_to_the_retries():
    assert diagnose(refused(), "http://10.1.2.3:8000/v1", "http://10.1.2.3:8000/v1") is None


@pytest.mark.parametrize("error", [
    PlainHTTPServer("the server speaks plain HTTP"),
    ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    ssl.SSLError(1, "[SSL: RECORD_LAYER_FAILURE] record layer failure"),
])
def test_a_tls_handshake_on_plain_text_is_named(error):
    outer = OSError("connect")
    outer.__cause__ = error
    found = diagnose(outer, "https://example.com/v1", "https://example.com/v1")
    assert found is not None and "speaks plain HTTP, not TLS" in found.message


def test_other_tls_errors_are_not_called_plain_http():
    outer = OSError("connect")
    outer.__cause__ = ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] alert")
    assert diagnose(outer, "https://example.com/v1", "https://example.com/v1") is None


class _Ctx:
    def __init__(self, **kw):
        from llmcli.cli.hints import HintContext

        base = dict(base_url="http://localhost:11434", key_sent=True, key_source="default",
                    profile=None, openai_key_set=False, max_retry_after=60.0)
        self.value = HintContext(**{**base, **kw})


def hint(exc, **kw) -> str | None:
    from llmcli.cli.env import Environment, using
    from llmcli.cli.hints import hint_for

    with using(Environment(hint_context=_Ctx(**kw).value)):
        return hint_for(exc)


def test_missing_v1_hint_only_when_the_path_has_no_version():
    err = NotFoundError("HTTP 404", status=404)
    assert "--base-url http://localhost:11434/v1" in hint(err)
    assert hint(err, base_url="http://localhost:8000/v1") is None
    assert hint(err, base_url="https://x.example.com/v1beta/openai") is None
    assert hint(err, base_url="https://r.openai.azure.com/openai/deployments/d?api-version=1") is None
    gone = NotFoundError("HTTP 404: no such model", status=404, code="model_not_found")
    assert hint(gone) is None


def test_auth_hints():
    err = AuthenticationError("HTTP 401", status=401)
    assert hint(err) is None                                   # a key was sent: it is wrong
    assert "set OPENAI_API_KEY" in hint(err, key_sent=False)
    profile = hint(err, key_sent=False, key_source="profile local", profile="local",
                   openai_key_set=True)
    assert "OPENAI_API_KEY is deliberately never sent" in profile and "'local'" in profile


def test_retry_after_hint_only_past_the_cap():
    long = RateLimitError("HTTP 429", status=429)
    long.retry_after = 600.0
    assert "asked to wait 600s, longer than the 60s" in hint(long)
    short = RateLimitError("HTTP 429", status=429)
    short.retry_after = 5.0
    assert hint(short) is None


def one_answer_server(answer: bytes):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.mark.parametrize("answer, plain", [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", True),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n<center>The plain HTTP request was sent to HTTPS port"
     b"</center>", False),                                                  # nginx on 443
    (b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
     False),                                                                # Go, Caddy
    (b"\x15\x03\x01\x00\x02\x02\x46", False),                               # a TLS alert
])
def test_the_plain_http_probe_tells_a_tls_port_apart(answer, plain):
    from llmcli.core.diagnose import speaks_plain_http

    listener = one_answer_server(answer)
    try:
        assert speaks_plain_http(listener.getsockname()) is plain
    finally:
        listener.close()
