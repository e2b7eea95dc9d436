"""Helpers for the tests of llmcli.testing, the test server."""

from __future__ import annotations

from typing import Any

import httpx

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
