"""Anthropic Message Batches on the test server: `/v1/messages/batches`.

Create (the requests inline), retrieve, list (newest first, ``limit``, ``after_id``,
``before_id``), cancel and ``/results`` (JSONL, one line per request: ``succeeded``,
``errored``, ``canceled`` or ``expired``). Requests run in the background through the
server's own Anthropic Messages handler, with the same knobs as the OpenAI Batch API
(``testing/batches.py``): ``line_seconds``, ``validating_seconds`` (time before
processing starts), ``finalizing_seconds``, ``expire_after``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, List
from urllib.parse import parse_qs

from .batches import BatchService, _new_id
from .dialects.anthropic import AnthropicAPI
from .plans import Plan, Reply, Request
from .validation import RequestError

if TYPE_CHECKING:
    from .app import App

PREFIX = "/v1/messages/batches"
MAX_REQUESTS = 100_000


def _now(later: float = 0) -> str:
    when = datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + later, timezone.utc)
    return when.isoformat().replace("+00:00", "Z")


def _json(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode())


class MessageBatchesAPI(AnthropicAPI):
    """The batches part of the Anthropic API (keys and errors as the Messages API)."""

    def matches(self, request: Request) -> bool:
        """Everything under `/v1/messages/batches`."""
        return request.path == PREFIX or request.path.startswith(PREFIX + "/")

    def route(self, app: "App", request: Request) -> tuple[Plan, int]:
        """Create, list, retrieve, cancel, results."""
        store = _store(app)
        rest = [p for p in request.path[len(PREFIX):].split("/") if p]
        method = request.method
        if method == "POST" and not rest:
            return _json(store.create(app, request)), 0
        if method == "GET" and not rest:
            return _json(store.page(parse_qs(request.query))), 0
        batch = store.batches.get(rest[0]) if rest else None
        if batch is None:
            raise RequestError(404, f"batch {rest[0] if rest else ''} not found")
        if method == "GET" and len(rest) == 1:
            return _json(batch), 0
        if method == "POST" and rest[1:] == ["cancel"]:
            return _json(store.cancel(batch)), 0
        if method == "GET" and rest[1:] == ["results"]:
            if batch["processing_status"] != "ended":
                raise RequestError(400, "results are available once the batch has ended")
            return Reply(200, store.results[batch["id"]], content_type=b"application/x-jsonl"), 0
        raise RequestError(405, f"Method Not Allowed ({method} {request.path})")


class MessageBatchStore:
    """The batches of one server, run by tasks on its loop."""

    def __init__(self, service: BatchService) -> None:
        self.service = service
        self.batches: dict[str, dict[str, Any]] = {}
        self.results: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def create(self, app: "App", request: Request) -> dict[str, Any]:
        """A new batch from ``{"requests": [{"custom_id", "params"}, ...]}``."""
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            raise RequestError(400, "the request body is not valid JSON") from None
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not 0 < len(requests) <= MAX_REQUESTS:
            raise RequestError(400, f"requests: a list of 1 to {MAX_REQUESTS:,} requests")
        seen: set[str] = set()
        for entry in requests:
            key = entry.get("custom_id") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not isinstance(entry.get("params"), dict):
                raise RequestError(400, "requests: each needs custom_id and params")
            if key in seen:
                raise RequestError(400, f"requests: custom_id {key!r} is used twice")
            seen.add(key)
        host = request.headers.get("host", "127.0.0.1")
        batch_id = _new_id("msgbatch_")
        batch = {"id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                 "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0,
                                    "canceled": 0, "expired": 0},
                 "ended_at": None, "created_at": _now(), "expires_at": _now(86400),
                 "archived_at": None, "cancel_initiated_at": None, "results_url": None,
                 "_results": f"http://{host}{PREFIX}/{batch_id}/results"}
        self.batches[batch_id] = batch
        self.service.created += 1
        task = asyncio.get_running_loop().create_task(self._run(app, batch, requests))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _public(batch)

    def page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Newest first; ``after_id`` pages on to older ones, ``before_id`` to newer."""
        ordered = [_public(b) for b in list(self.batches.values())[::-1]]
        ids = [b["id"] for b in ordered]
        after, before = query.get("after_id", [None])[-1], query.get("before_id", [None])[-1]
        if after in ids:
            ordered = ordered[ids.index(after) + 1:]
        elif before in ids:
            ordered = ordered[:ids.index(before)]
        limit = max(1, min(1000, int(query.get("limit", ["20"])[-1])))
        page = ordered[:limit]
        return {"data": page, "has_more": len(ordered) > limit,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None}

    def cancel(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ask the batch to stop: requests not run yet end as ``canceled``."""
        if batch["processing_status"] == "in_progress":
            batch["processing_status"] = "canceling"
            batch["cancel_initiated_at"] = _now()
        return _public(batch)

    async def _run(self, app: "App", batch: dict[str, Any],
                   requests: List[dict[str, Any]]) -> None:   # `list` is a method here
        knobs = self.service.knobs
        await asyncio.sleep(knobs.validating_seconds)
        counts, lines = batch["request_counts"], []  # type: dict[str, int], list[bytes]
        for done, entry in enumerate(requests):
            if batch["processing_status"] == "canceling":
                kind = "canceled"
            elif knobs.expire_after is not None and done >= knobs.expire_after:
                kind = "expired"
            else:
                kind = ""
            result = {"type": kind} if kind else self._result(entry["params"])
            counts["processing"] -= 1
            counts[result["type"]] += 1
            lines.append(json.dumps({"custom_id": entry["custom_id"], "result": result}).encode())
            if not kind and knobs.line_seconds:
                await asyncio.sleep(knobs.line_seconds)
            elif done % 200 == 199:
                await asyncio.sleep(0)
        await asyncio.sleep(knobs.finalizing_seconds)
        self.results[batch["id"]] = b"\n".join(lines) + b"\n"
        batch.update(processing_status="ended", ended_at=_now(), results_url=batch["_results"])

    def _result(self, params: dict[str, Any]) -> dict[str, Any]:
        status, body = self.service.handler("/v1/messages", params)
        if 200 <= status < 300:
            return {"type": "succeeded", "message": body}
        return {"type": "errored", "error": body}


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _store(app: "App") -> MessageBatchStore:
    """The app's store, made on first use (next to its OpenAI batch service)."""
    if app.batches.messages is None:
        app.batches.messages = MessageBatchStore(app.batches)
    store: MessageBatchStore = app.batches.messages
    return store
