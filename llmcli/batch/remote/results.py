"""Result lines of the Batch API -> llmcli's records, written through the local writer.

A part is merged once its batch has ended: its output and error files (downloaded to
disk) are read as one stream of result lines taken by ``custom_id`` while the part's
items are walked in input order, and each item gets exactly one record: its result, or, when the batch had none for it (expired,
cancelled, failed validation, or a server that lost it), an error record saying why.
Error records are retryable: ``--resume`` sends those items again.

Liberal: ``response.body`` may be an object or a JSON string, ``usage`` may be null, an
error may lack ``code``, a file may be empty or hold lines that are not JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from ...core.chat import ChatResult, text_of
from ...core.errors import APIError, SchemaValidationError, error_kind, status_error
from ..reader import Item, line_id, lines_at
from ..run_state import schema_of
from .parts import CHAT, EMBEDDINGS, MESSAGES
from .state import Part

_loads = json.JSONDecoder().decode
# Why an item has no result, by the batch's end status.
_MISSING = {
    "expired": ("batch_expired", "the batch expired before this request ran"),
    "cancelled": ("batch_cancelled", "the batch was cancelled before this request ran"),
    "failed": ("batch_failed", "the batch failed"),
}


@dataclass
class MergeStats:
    """What merging a part wrote."""

    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def add_error(self, kind: str) -> None:
        self.failed += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1


class ResultStream:
    """The result lines of a part's files, taken by ``custom_id`` in the part's order.

    Servers usually write results in request order, so the files are read as a stream
    and each line parsed once; a line that comes early is kept (as bytes) until its item
    is reached, so memory grows only with the disorder. The first line for an id wins.
    """

    def __init__(self, paths: list[str]) -> None:
        self._lines = self._read(paths)
        self._early: dict[str, bytes] = {}

    @staticmethod
    def _read(paths: list[str]) -> Iterator[tuple[str, Any, bytes]]:
        for path in paths:
            with open(path, "rb") as f:
                for raw in f:
                    obj = _parse(raw)
                    key = obj.get("custom_id") if isinstance(obj, dict) else None
                    if isinstance(key, str):
                        yield key, obj, raw

    def take(self, key: str) -> Any:
        """The parsed result line of ``key``, or ``None`` when the files have none."""
        early = self._early.pop(key, None)
        if early is not None:
            return _parse(early)
        for found, obj, raw in self._lines:
            if found == key:
                return obj
            self._early.setdefault(found, raw)
        return None


def _parse(raw: bytes) -> Any:
    try:
        return _loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):   # not JSON, or nested too deeply to read
        return None


def members(path: str, fmt: str, part: Part) -> Iterator[tuple[int, str]]:
    """(line, id) of the part's items, in input order (the order of its request file)."""
    last = part.ranges[-1][1] if part.ranges else 0
    first = part.ranges[0][0] if part.ranges else 1
    plain = fmt == "plain"
    for line, _, raw in lines_at(path, part.offset, first):
        if line > last:
            return
        if part.holds(line):
            yield line, str(line) if plain else line_id(fmt, line, raw)


class Converter:
    """Turns one result line into a record with the run's record shape."""

    def __init__(self, records: Any, endpoint: str, latency_ms: int = 0,
                 prices: Any = None) -> None:
        self.records, self.endpoint, self.latency_ms = records, endpoint, latency_ms
        self._parse = parser_for(endpoint)
        self.prices = prices    # a usage.prices.PriceTable, or None: no cost

    def _cost(self, result: ChatResult) -> Optional[float]:
        """What the reply cost at the Batch API's price (half, as the table says)."""
        if self.prices is None:
            return None
        return self.prices.cost(result.model, result.usage, batch=True)

    def record(self, item: Item, obj: Any, missing: tuple[str, str], stats: MergeStats) -> bytes:
        """The record of ``item`` from its parsed result line, or from ``missing``
        (code, message) when it has none."""
        response = obj.get("response") if type(obj) is dict else None
        if type(response) is dict:      # the common case first: a 2xx with an object body
            status, body = response.get("status_code"), response.get("body")
            if type(status) is int and 200 <= status < 300 and type(body) is dict:
                try:
                    result = self._parse(body, response.get("request_id"))
                except APIError as exc:   # a body that says it failed: its own error
                    return self._error(item, exc, stats)
                if result is not None:
                    return self._ok(item, result, stats)
        return self._other(item, obj, missing, stats)

    def _ok(self, item: Item, result: ChatResult, stats: MergeStats) -> bytes:
        """A reply's record; with a schema (per line or --schema) the reply is checked
        as local batch checks it: one that does not match is a failed record."""
        schema = schema_of(item.body) if item.body else None
        if schema is None:
            stats.ok += 1
            return self.records.ok(item, result, 1, self.latency_ms, self._cost(result))
        from ...core.schema import parse_reply

        try:
            parsed = parse_reply(result.content, schema, 1, result.request_id)
        except SchemaValidationError as exc:
            return self._error(item, exc, stats)
        stats.ok += 1
        return self.records.ok(item, result, 1, self.latency_ms, self._cost(result), parsed)

    def _other(self, item: Item, obj: Any, missing: tuple[str, str], stats: MergeStats) -> bytes:
        """Everything but the common case: no line, an error, a string body..."""
        if not isinstance(obj, dict):
            return self._error(item, APIError(f"{missing[1]} (no result for this request)",
                                              code=missing[0]), stats)
        response, error = obj.get("response"), obj.get("error")
        if isinstance(response, dict) and response.get("status_code") is not None:
            return self._response(item, response, stats)
        return self._error(item, _line_error(error, missing), stats)

    def _response(self, item: Item, response: dict[str, Any], stats: MergeStats) -> bytes:
        status, request_id = response.get("status_code"), response.get("request_id")
        body = response.get("body")
        if isinstance(body, str):
            try:
                body = _loads(body)
            except (ValueError, RecursionError):
                pass
        if not isinstance(status, int) or not 200 <= status < 300:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            exc = status_error(status if isinstance(status, int) else 500, data,
                               "application/json", request_id)
            return self._error(item, exc, stats)
        try:
            result = self._parse(body, request_id) if isinstance(body, dict) else None
        except APIError as exc:   # a body that says it failed: its own error
            return self._error(item, exc, stats)
        if result is None:
            return self._error(item, APIError("the result has no usable body",
                                              type="invalid_response", status=status,
                                              request_id=request_id), stats)
        return self._ok(item, result, stats)

    def _error(self, item: Item, exc: APIError, stats: MergeStats) -> bytes:
        stats.add_error(error_kind(exc))
        return self.records.error(item, exc, 1, self.latency_ms)


def _line_error(error: Any, missing: tuple[str, str]) -> APIError:
    """An error entry of the error file (``{code, message}``, either may be missing)."""
    if not isinstance(error, dict):
        return APIError(f"{missing[1]} (no result for this request)", code=missing[0])
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = str(error.get("message") or code or "the request failed")
    exc = APIError(message, code=code or missing[0])
    exc.retryable = True   # --resume sends it again
    return exc


def parser_for(endpoint: str) -> Callable[[dict[str, Any], Optional[str]], Optional[ChatResult]]:
    """The function that reads a successful body of ``endpoint`` into a result: chat and
    embeddings here, the native APIs through their dialect."""
    if endpoint == CHAT:
        return _chat_result
    if endpoint == EMBEDDINGS:
        return _embeddings_result
    from ...core.dialects import anthropic, openai_responses

    return {MESSAGES: anthropic.result_of}.get(endpoint, openai_responses.result_of)


def _embeddings_result(body: dict[str, Any], request_id: Optional[str]) -> ChatResult:
    data = body.get("data")
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    vector = first.get("embedding")
    content = json.dumps(vector) if vector is not None else ""
    return ChatResult(content, None, body.get("usage"), body.get("id"), body.get("model"),
                      body, request_id)


def _chat_result(body: dict[str, Any], request_id: Optional[str]) -> Optional[ChatResult]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return ChatResult(content if type(content) is str else text_of(content),
                      choices[0].get("finish_reason"), body.get("usage"),
                      body.get("id"), body.get("model"), body, request_id)


def missing_reason(batch: dict[str, Any]) -> tuple[str, str]:
    """(code, message) for the items of a batch that have no result line."""
    status = batch.get("status")
    code, message = _MISSING.get(str(status), ("missing_result", "the batch returned no result"))
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    if status == "failed" and isinstance(data, list) and data and isinstance(data[0], dict):
        message = f"the batch failed validation: {data[0].get('message') or data[0].get('code')}"
    return code, message


def validation_errors(batch: dict[str, Any]) -> dict[int, str]:
    """Line of the part file (1-based) -> the validation error the batch gave it."""
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    found = {}
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("line"), int):
            found[entry["line"]] = str(entry.get("message") or entry.get("code") or "invalid")
    return found
