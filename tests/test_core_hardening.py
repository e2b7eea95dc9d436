"""The core against hostile or broken servers: a body that trickles past --max-time,
redirects that would carry the key away, servers that echo credentials back, errors
sent with a 200, and base URLs with a query string."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Iterator

import httpx
import pytest
import respx

from llmcli.core.aclient import AsyncClient
from llmcli.core.chat import check_status, parse_chat
from llmcli.core.client import Client
from llmcli.core.errors import (APIError, APITimeoutError, InvalidResponseError, RateLimitError,
                                ServerError)
from llmcli.core.options import ClientOptions
from llmcli.core.retry import RetryPolicy

KEY = "sk-hardening-0123456789abcdQRST"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def opts(base_url: str, **kw) -> ClientOptions:
    return ClientOptions(base_url=base_url, api_key=KEY, **kw)


class RawServer:
    """A one-purpose HTTP server on 127.0.0.1: ``handler(conn)`` answers each connection."""

    def __init__(self, handler) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self._handler = handler
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            self.seen.append(conn.recv(65536))
            try:
                self._handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


def trickle(conn: socket.socket) -> None:
    """Headers at once, then the body one byte every 0.2 s: no read ever times out."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n")
    for _ in range(500):
        conn.sendall(b" ")
        time.sleep(0.2)


@pytest.fixture
def trickling() -> Iterator[RawServer]:
    server = RawServer(trickle)
    yield server
    server.close()


def test_max_time_bounds_a_body_that_trickles_sync(trickling):
    started = time.monotonic()
    with Client(opts(f"http://127.0.0.1:{trickling.port}/v1", max_time=1.0,
                     retry=RetryPolicy(max_retries=0))) as client:
        with pytest.raises(APITimeoutError, match="time budget"):
            client.chat(BODY)
    assert time.monotonic() - started < 20   # not the 100 s the body would take


def test_max_time_bounds_a_body_that_trickles_async(trickling):
    async def go() -> None:
        async with AsyncClient(opts(f"http://127.0.0.1:{trickling.port}/v1", max_time=1.0,
                                    retry=RetryPolicy(max_retries=0))) as client:
            await client.chat(BODY)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="time budget"):
        asyncio.run(go())
    assert time.monotonic() - started < 20


@pytest.fixture
def redirecting() -> Iterator[tuple[RawServer, RawServer]]:
    """A server that redirects every request to a second, 'third-party' server."""
    thief = RawServer(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    location = f"http://127.0.0.1:{thief.port}/steal".encode()
    api = RawServer(lambda c: c.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " +
                                        location + b"\r\nContent-Length: 0\r\n\r\n"))
    yield api, thief
    api.close()
    thief.close()


@pytest.mark.parametrize("backend", ["sync", "aiohttp", "httpx"])
def test_redirects_are_not_followed_so_the_key_stays_home(redirecting, backend):
    api, thief = redirecting
    options = opts(f"http://127.0.0.1:{api.port}/v1", auth_header="api-key", auth_scheme="",
                   retry=RetryPolicy(max_retries=0))
    with pytest.raises(APIError) as info:
        if backend == "sync":
            with Client(options) as client:
                client.chat(BODY)
        else:
            async def go() -> None:
                async with AsyncClient(options, backend=backend) as client:
                    await client.chat(BODY)
            asyncio.run(go())
    assert info.value.status == 307 and "/steal" in info.value.message
    assert "set base_url" in info.value.message
    assert thief.seen == [] and len(api.seen) == 1


def test_everything_a_server_echoes_is_masked():
    body = json.dumps({"error": {"message": f"bad key {KEY}", "param": KEY,
                                 "type": "invalid_request_error"}}).encode()
    headers = {"content-type": "application/json", "x-request-id": f"req_{KEY}"}
    with pytest.raises(APIError) as info:
        check_status(401, headers, body, [KEY])
    exc = info.value
    assert KEY not in exc.message and KEY not in json.dumps(exc.body)
    assert KEY not in exc.request_id and KEY not in str(exc.to_dict())


def test_credentials_in_headers_query_and_proxy_are_secrets():
    header_token = "sk-header-000011112222XYZW"
    options = ClientOptions(base_url="https://h/v1?key=querySECRET12345&x=1",
                            headers={"Authorization": f"Bearer {header_token}", "X-Title": "me"},
                            proxy="http://user:proxyPASSWORD99@proxy:3128")
    secrets = options.secrets()
    assert header_token in secrets and "querySECRET12345" in secrets
    assert "proxyPASSWORD99" in secrets and "me" not in secrets
    assert "querySECRET12345" not in options.shown_url()


@respx.mock
def test_a_query_string_in_base_url_is_kept_as_query():
    route = respx.post("http://h.test/v1/chat/completions").mock(return_value=httpx.Response(
        200, json={"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}))
    with Client(opts("http://h.test/v1?api-version=2024-06-01", query={"extra": "1"})) as client:
        assert client.chat(BODY).content == "ok"
    url = route.calls.last.request.url
    assert url.path == "/v1/chat/completions"
    assert dict(url.params) == {"api-version": "2024-06-01", "extra": "1"}


@pytest.mark.parametrize("error, cls, retryable", [
    ({"message": "bad model", "type": "invalid_request_error"}, InvalidResponseError, False),
    ({"message": "boom", "type": "server_error"}, ServerError, True),
    ({"message": "slow down", "type": "rate_limit_exceeded"}, RateLimitError, True),
    ("plain text error", ServerError, True),
])
def test_an_error_sent_with_200_is_classified_by_its_type(error, cls, retryable):
    body = json.dumps({"error": error}).encode()
    with pytest.raises(APIError) as info:
        parse_chat(body, 200, {})
    assert type(info.value) is cls and info.value.retryable is retryable
    assert info.value.message.startswith("the server answered 200 with an error")


@respx.mock
def test_a_retry_after_beyond_the_cap_is_explained_in_the_log(caplog):
    respx.post("http://h.test/v1/chat/completions").mock(return_value=httpx.Response(
        429, headers={"retry-after": "3600"}, json={"error": {"message": "later"}}))
    with caplog.at_level("INFO", logger="llmcli"), Client(opts("http://h.test/v1")) as client:
        with pytest.raises(RateLimitError):
            client.chat(BODY)
    assert "asks to wait 3600s" in caplog.text
