"""Anthropic Message Batches (`/v1/messages/batches`) behind the runner's interface.

The runner speaks OpenAI's terms; this adapter translates both ways:

- there is no file upload: ``create`` streams the part's request file (``{"custom_id",
  "params"}`` lines, made by :mod:`.parts`) as the body ``{"requests": [...]}``, with a
  known length, so memory stays flat (``uploads`` is False: the runner skips the upload
  step and keeps the part's file until the create);
- a batch object is read into OpenAI's shape: ``processing_status`` ``in_progress`` /
  ``canceling`` / ``ended`` -> ``in_progress`` / ``cancelling`` / ``completed``,
  ``request_counts`` -> ``total``/``completed``/``failed``, ``results_url`` as the
  output file, RFC 3339 times as epoch seconds;
- the results JSONL is rewritten while it downloads into Batch API output lines:
  ``succeeded`` -> a 200 with the Message as body, ``errored`` -> the error's HTTP
  status with Anthropic's error body, ``canceled``/``expired`` -> ``batch_cancelled``/
  ``batch_expired`` errors;
- batches carry no metadata, so ``has_metadata`` is False: the runner matches a part
  that may have been created by its creation time and request count instead.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any, Callable, Iterator, Optional
from urllib.parse import quote

from ...core.dialects.anthropic import API_VERSION
from ...core.errors import InvalidResponseError
from .api import BatchAPI, path_segment
from .state import as_dict

PATH = "/messages/batches"
_STATUS = {"in_progress": "in_progress", "canceling": "cancelling", "ended": "completed"}
_HTTP_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}
_MISSING = {"canceled": ("batch_cancelled", "the batch was cancelled before this request ran"),
            "expired": ("batch_expired", "the batch expired before this request ran")}


def requests_body(path: str) -> tuple[int, Callable[[], Iterator[bytes]]]:
    """(length, chunk maker) of ``{"requests": [line, line, ...]}`` from a file of
    request lines, read 1 MB at a time."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        count = sum(1 for _ in f)
    # every line loses its newline and all but the last gain a comma: same length - 1
    length = len(b'{"requests":[') + size - 1 + len(b"]}") if count else len(b'{"requests":[]}')

    def chunks() -> Iterator[bytes]:
        yield b'{"requests":['
        with open(path, "rb") as f:
            pending = b""
            for line in f:
                if pending:
                    yield pending + b","
                pending = line.rstrip(b"\n")
            yield pending
        yield b"]}"
    return length, chunks


def epoch(value: Any) -> Optional[float]:
    """An RFC 3339 time (or a number) as epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def openai_shape(batch: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic batch object in the OpenAI terms the runner reads."""
    counts = as_dict(batch.get("request_counts"))

    def number(key: str) -> int:
        value = counts.get(key)
        return value if isinstance(value, int) else 0
    failed = number("errored") + number("canceled") + number("expired")
    status = _STATUS.get(str(batch.get("processing_status")), batch.get("processing_status"))
    if status == "completed" and batch.get("cancel_initiated_at"):
        status = "cancelled"
    return {"id": batch.get("id"), "status": status, "created_at": epoch(batch.get("created_at")),
            "completed_at": epoch(batch.get("ended_at")),
            "request_counts": {"total": number("processing") + number("succeeded") + failed,
                               "completed": number("succeeded"), "failed": failed},
            "output_file_id": batch.get("results_url"), "error_file_id": None,
            "metadata": None}


def result_line(obj: Any) -> Optional[dict[str, Any]]:
    """One Anthropic result line as a Batch API output line (None when unreadable)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
        return None
    result = as_dict(obj.get("result"))
    kind = result.get("type")
    line: dict[str, Any] = {"custom_id": obj["custom_id"], "response": None, "error": None}
    if kind == "succeeded":
        line["response"] = {"status_code": 200, "request_id": None, "body": result.get("message")}
    elif kind == "errored":
        body = as_dict(result.get("error"))
        inner = as_dict(body.get("error")) or body
        status = _HTTP_STATUS.get(str(inner.get("type")), 500)
        line["response"] = {"status_code": status, "request_id": body.get("request_id"),
                            "body": body}
    else:
        code, message = _MISSING.get(str(kind), ("missing_result", f"result type {kind!r}"))
        line["error"] = {"code": code, "message": message}
    return line


class AnthropicBatchAPI(BatchAPI):
    """Message Batches of one base URL (``https://api.anthropic.com/v1``)."""

    uploads = False
    has_metadata = False

    def upload(self, path: str, filename: str, purpose: str = "batch") -> dict[str, Any]:
        raise NotImplementedError("Message Batches take their requests in the create call")

    def create(self, source: str, endpoint: str, window: str,
               metadata: dict[str, str]) -> dict[str, Any]:
        """``POST /messages/batches`` with the requests of the file ``source``, once."""
        length, chunks = requests_body(source)
        headers = {"content-type": "application/json", "content-length": str(length),
                   "anthropic-version": API_VERSION}
        return openai_shape(self._json("POST", PATH, lambda: self._counted(chunks()), headers,
                                       retry=False))

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return openai_shape(self._json("GET", f"{PATH}/{path_segment(batch_id)}",
                                       headers={"anthropic-version": API_VERSION}))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return openai_shape(self._json("POST", f"{PATH}/{path_segment(batch_id)}/cancel",
                                       headers={"anthropic-version": API_VERSION}))

    def list(self, after: Optional[str] = None, limit: int = 100) -> dict[str, Any]:
        query = f"?limit={limit}" + (f"&after_id={quote(after, safe='')}" if after else "")
        page = self._json("GET", PATH + query, headers={"anthropic-version": API_VERSION})
        data = page.get("data") if isinstance(page.get("data"), list) else []
        return dict(page, data=[openai_shape(b) for b in data if isinstance(b, dict)])

    def delete_file(self, file_id: str) -> None:
        """Nothing was uploaded."""

    def _download_once(self, file_id: str, dest: str) -> int:
        """Fetch ``results_url`` (``file_id``) and write Batch API output lines."""
        raw = dest + ".part"
        try:
            self._fetch(file_id, raw)
            return _rewrite(raw, dest)
        finally:
            if os.path.exists(raw):
                os.unlink(raw)

    def _fetch(self, url: str, dest: str) -> None:
        if not url.startswith(("http://", "https://")):
            url = self.options.url("/" + url.lstrip("/"))
        if _origin(url) != _origin(self.options.url("/")):
            # the key goes along: only to the API's own host
            raise InvalidResponseError(f"results_url {url} is not on {self.options.shown_url()}; "
                                       "not sending the key there")
        headers = self.options.request_headers() | {"anthropic-version": API_VERSION}
        self._stream_to(url, dest, headers)


def _origin(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _rewrite(source: str, dest: str) -> int:
    """Anthropic result lines -> Batch API output lines; returns the bytes written."""
    written = 0
    with open(source, "rb") as f, open(dest, "wb") as out:
        for raw in f:
            try:
                line = result_line(json.loads(raw))
            except (ValueError, RecursionError):   # not JSON, or nested too deeply to read
                continue
            if line is not None:
                data = json.dumps(line, separators=(",", ":")).encode() + b"\n"
                out.write(data)
                written += len(data)
    return written
