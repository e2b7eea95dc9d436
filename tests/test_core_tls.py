"""The default TLS verification loads its CA bundle at the first handshake, not when a
client is made, in the sync client and in both async transports alike; and the
handshake that triggers the load verifies for real."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Iterator

import pytest
import trustme

from llmcli.core._httpx import LazyTrustContext
from llmcli.core.aclient import AsyncClient
from llmcli.core.client import Client, tls_verify
from llmcli.core.errors import APIConnectionError
from llmcli.core.options import ClientOptions
from llmcli.testing import MockOpenAIServer

from .conftest import API_KEY

BODY = {"model": "test-model", "messages": [{"role": "user", "content": "over tls"}]}


def cas_loaded(context: Any) -> int:
    return int(context.cert_store_stats()["x509_ca"])


def test_the_default_verification_is_a_context_with_no_ca_loaded_yet() -> None:
    context = tls_verify(ClientOptions(base_url="https://api.example.com/v1", api_key="k"))
    assert isinstance(context, LazyTrustContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname and cas_loaded(context) == 0


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MockOpenAIServer, str]]:
    ca = trustme.CA()
    where = tmp_path_factory.mktemp("tls")
    ca_pem, cert_pem = where / "ca.pem", where / "server.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    with MockOpenAIServer(api_key=API_KEY, certfile=str(cert_pem)) as server:
        yield server, str(ca_pem)


def options(server: MockOpenAIServer) -> ClientOptions:
    return ClientOptions(base_url=server.base_url, api_key=API_KEY)


@pytest.mark.parametrize("backend", ["sync", "httpx", "aiohttp"])
def test_the_bundle_loads_at_the_first_handshake_and_verifies(https_server, monkeypatch,
                                                              backend: str) -> None:
    server, ca_pem = https_server
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)     # the lazy context's bundle
    assert call(backend, options(server)).content == "echo: over tls"


@pytest.mark.parametrize("backend", ["sync", "httpx", "aiohttp"])
def test_an_unknown_ca_is_still_refused(https_server, backend: str) -> None:
    server, _ = https_server            # certifi's bundle does not hold the throwaway CA
    with pytest.raises(APIConnectionError, match="could not be verified"):
        call(backend, options(server))


def call(backend: str, opts: ClientOptions) -> Any:
    if backend == "sync":
        with Client(opts) as client:
            assert cas_loaded(client._http._transport._pool._ssl_context) == 0
            return client.chat(BODY)

    async def go() -> Any:
        async with AsyncClient(opts, backend=backend) as client:
            transport: Any = client._transport
            if backend == "httpx":
                context = transport._http._transport._pool._ssl_context
            else:
                context = transport._open().connector._ssl
            assert isinstance(context, LazyTrustContext) and cas_loaded(context) == 0
            return await client.chat(BODY)
    return asyncio.run(go())
