"""Shared helpers and fixtures for the tests of llmcli.testing, the test server."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import openai
import pytest

from llmcli.testing import MockOpenAIServer

KEY = "sk-test-0123456789abcd"
def user(text: str) -> list[dict[str, Any]]:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


def body(prompt: str, **extra: Any) -> dict[str, Any]:
    """A chat completion request body for ``prompt``."""
    return {"model": "test-model", "messages": user(prompt), **extra}


def sse_data(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of an event stream, comments included as ``:`` lines."""
    return [line.removeprefix("data: ") for line in response.iter_lines() if line]


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


