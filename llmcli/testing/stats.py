"""Request statistics for ``GET /_control/stats``.

Recording is on the hot path, so it only counts and keeps references; the
JSON view (parsed bodies, masked headers) is built when someone asks for it.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Iterable
from urllib.parse import parse_qsl

from .plans import Request

RECENT = 100


def mask_secret(value: str) -> str:
    """Hide a key or header value, keeping just enough to recognise it.

    ``"Bearer sk-proj-1234abcd"`` becomes ``"Bearer sk-...abcd"``; values of
    eight characters or fewer are hidden entirely.
    """
    scheme, sep, key = value.partition(" ")
    if not sep:
        scheme, key = "", value
    masked = key[:3] + "..." + key[-4:] if len(key) > 8 else "***"
    return f"{scheme} {masked}" if scheme else masked


def _body_view(body: bytes) -> Any:
    """A request body for display: parsed JSON when possible, else text."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class Stats:
    """Counts of requests by path and outcome, plus the last ``RECENT`` requests."""

    def __init__(self, secret_headers: Iterable[str] = ("authorization",)) -> None:
        self._secret = frozenset(name.lower() for name in secret_headers)
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self.total = 0
        self.paths: dict[str, int] = {}
        self.statuses: dict[str, int] = {}
        self._recent: deque[tuple[Request, str]] = deque(maxlen=RECENT)

    def record(self, request: Request, outcome: str) -> None:
        """Count one request; ``outcome`` is its status code or ``hang``/``drop``."""
        self.total += 1
        self.paths[request.path] = self.paths.get(request.path, 0) + 1
        self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
        self._recent.append((request, outcome))

    def _request_view(self, request: Request, outcome: str) -> dict[str, Any]:
        """One recorded request as JSON-ready data, secrets masked."""
        headers = {name: mask_secret(value) if name in self._secret else value
                   for name, value in request.headers.items()}
        return {
            "method": request.method,
            "path": request.path,
            "query": dict(parse_qsl(request.query, keep_blank_values=True)),
            "headers": headers,
            "body": _body_view(request.body),
            "status": outcome,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, oldest request first."""
        return {
            "total_requests": self.total,
            "paths": dict(self.paths),
            "statuses": dict(self.statuses),
            "requests": [self._request_view(r, o) for r, o in self._recent],
        }
