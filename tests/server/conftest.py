"""Fixtures for the tests of llmcli.testing, the test server. ``server`` here is a
plain server of its own (no required key), shadowing the suite-wide one."""

from __future__ import annotations

from typing import Iterator

import httpx
import openai
import pytest

from llmcli.testing import MockOpenAIServer

from .helpers import KEY


@pytest.fixture(scope="module")
def server() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    """Every test starts with empty stats and fault counters on the shared server."""
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


@pytest.fixture
def http(server: MockOpenAIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=5) as client:
        yield client


@pytest.fixture
def sdk(server: MockOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)


