"""The Batch API of the test server: ``/v1/files`` and ``/v1/batches``.

A batch is run in the background on the server's event loop, one line at a time,
through the server's own chat and embeddings handlers (so a ``#fault:500`` directive in
a prompt fails that line as it would fail a request). Knobs (:class:`BatchKnobs`, set
by ``POST /_control/batches`` or ``MockOpenAIServer.batch_knobs``) make it fast or slow
and make it fail the ways real servers do: validation failure, expiry part-way, slow
``finalizing``, and a "quirky" mode that sends what some OpenAI-compatible servers send
(``response.body`` as a JSON string, an empty error file, errors without ``code``,
``usage: null``).

Files and batches live in memory; this is a test server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

from .faults import error_body
from .plans import Reply
from .validation import RequestError

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses")
TERMINAL = ("completed", "failed", "expired", "cancelled")
# A handler runs one request line: (url, body) -> (HTTP status, response object).
Handler = Callable[[str, Any], tuple[int, Any]]
_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):012x}"


@dataclass
class BatchKnobs:
    """How batches behave. Seconds are real seconds on the server."""

    line_seconds: float = 0.0        # time each request line takes
    validating_seconds: float = 0.0
    finalizing_seconds: float = 0.0
    fail_validation: bool = False    # every batch fails validation (errors.data[])
    expire_after: Optional[int] = None   # lines run before the batch expires
    quirky: bool = False             # string bodies, empty error file, no codes, usage null

    def update(self, data: dict[str, Any]) -> None:
        """Set the knobs named in ``data``; an unknown name is a ``ValueError``."""
        names = {f.name for f in fields(self)}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"unknown batch knob {key!r}")
            setattr(self, key, value)


def _json(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode())


def _not_found(what: str, ident: str) -> RequestError:
    return RequestError(404, f"No such {what}: '{ident}'", None, "not_found")


class BatchService:
    """Files and batches; ``route`` answers the requests, tasks run the batches."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.knobs = BatchKnobs()
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.created = 0      # batches ever created: tests count duplicates with it
        self.messages: Any = None   # Anthropic Message Batches (message_batches.py), on first use
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, method: str, path: str, query: str, headers: dict[str, str],
              body: bytes) -> Optional[Reply]:
        """The reply for a files/batches request, or ``None`` when the path is not ours."""
        parts = path.strip("/").split("/")[1:]   # drop "v1"
        if not parts or parts[0] not in ("files", "batches"):
            return None
        if parts[0] == "files":
            return self._files(method, parts[1:], query, headers, body)
        return self._batches(method, parts[1:], query, body)

    def control(self, data: Any) -> dict[str, Any]:
        """``POST /_control/batches``: set knobs; answers the knobs and counters."""
        if isinstance(data, dict):
            self.knobs.update(data)
        return {"knobs": vars(self.knobs), "created": self.created,
                "files": len(self.files), "batches": len(self.batches)}

    # -- files ---------------------------------------------------------------
    def _files(self, method: str, rest: list[str], query: str, headers: dict[str, str],
               body: bytes) -> Reply:
        if method == "POST" and not rest:
            return _json(self._upload(headers.get("content-type", ""), body))
        if method == "GET" and not rest:
            purpose = parse_qs(query).get("purpose", [None])[-1]
            listed = [meta for meta, _ in self.files.values()
                      if purpose is None or meta["purpose"] == purpose]
            return _json({"object": "list", "data": listed[::-1], "has_more": False})
        if not rest or rest[0] not in self.files:
            raise _not_found("file", rest[0] if rest else "")
        meta, data = self.files[rest[0]]
        if method == "GET" and rest[1:] == ["content"]:
            return Reply(200, data, content_type=b"application/octet-stream")
        if method == "GET" and len(rest) == 1:
            return _json(meta)
        if method == "DELETE" and len(rest) == 1:
            del self.files[rest[0]]
            return _json({"id": rest[0], "object": "file", "deleted": True})
        raise RequestError(405, f"Invalid method for URL ({method} /v1/files/...)")

    def _upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        fields_, files = parse_multipart(content_type, body)
        if "file" not in files:
            raise RequestError(400, "Missing required parameter: 'file'.", "file")
        purpose = fields_.get("purpose")
        if purpose not in ("batch", "fine-tune", "assistants", "user_data", "evals"):
            raise RequestError(400, f"Invalid value for 'purpose': {purpose!r}.", "purpose")
        filename, data = files["file"]
        return self.add_file(filename, purpose, data)

    def add_file(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        """Store a file; returns its object."""
        meta: dict[str, Any] = {"id": _new_id("file-"), "object": "file", "bytes": len(data),
                "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                "status": "processed", "status_details": None}
        self.files[meta["id"]] = (meta, data)
        return meta

    # -- batches -------------------------------------------------------------
    def _batches(self, method: str, rest: list[str], query: str, body: bytes) -> Reply:
        if method == "POST" and not rest:
            return _json(self._create(json.loads(body or b"{}")))
        if method == "GET" and not rest:
            return _json(self._list(parse_qs(query)))
        if not rest or rest[0] not in self.batches:
            raise _not_found("batch", rest[0] if rest else "")
        batch = self.batches[rest[0]]
        if method == "GET" and len(rest) == 1:
            return _json(batch)
        if method == "POST" and rest[1:] == ["cancel"]:
            if batch["status"] not in TERMINAL:
                batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
            return _json(batch)
        raise RequestError(405, f"Invalid method for URL ({method} /v1/batches/...)")

    def _create(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or data.get("input_file_id") not in self.files:
            raise RequestError(400, "input_file_id must name an uploaded file.", "input_file_id")
        if data.get("endpoint") not in ENDPOINTS:
            raise RequestError(400, f"Invalid endpoint {data.get('endpoint')!r}.", "endpoint")
        if data.get("completion_window") != "24h":
            raise RequestError(400, "completion_window must be '24h'.", "completion_window")
        now = int(time.time())
        batch = {"id": _new_id("batch_"), "object": "batch", "endpoint": data["endpoint"],
                 "errors": None, "input_file_id": data["input_file_id"],
                 "completion_window": "24h", "status": "validating", "output_file_id": None,
                 "error_file_id": None, "created_at": now, "in_progress_at": None,
                 "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
                 "failed_at": None, "expired_at": None, "cancelling_at": None,
                 "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": data.get("metadata")}
        self.batches[batch["id"]] = batch
        self.created += 1
        task = asyncio.get_running_loop().create_task(BatchRun(self, batch).run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Newest first, ``after`` a batch id, at most ``limit`` (1-100, default 20)."""
        ordered = list(self.batches.values())[::-1]
        after = query.get("after", [None])[-1]
        if after in self.batches:
            ordered = ordered[[b["id"] for b in ordered].index(after) + 1:]
        limit = max(1, min(100, int(query.get("limit", ["20"])[-1])))
        page = ordered[:limit]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit}


class BatchRun:
    """One batch going through validating, in_progress, finalizing and its end."""

    def __init__(self, service: BatchService, batch: dict[str, Any]) -> None:
        self.service, self.batch, self.knobs = service, batch, service.knobs
        self.output: list[bytes] = []
        self.errors: list[bytes] = []

    async def run(self) -> None:
        """Run the batch to its end."""
        await asyncio.sleep(self.knobs.validating_seconds)
        lines, problems = self._validate()
        if problems:
            self._end("failed", errors={"object": "list", "data": problems})
            return
        if self._cancelled():
            return
        self.batch["status"], self.batch["in_progress_at"] = "in_progress", int(time.time())
        self.batch["request_counts"]["total"] = len(lines)
        end = await self._run_lines(lines)
        if end == "cancelled":
            self._set("cancelling", "cancelling_at")
        else:
            self._set("finalizing", "finalizing_at")
        await asyncio.sleep(self.knobs.finalizing_seconds)
        self._write_files()
        self._end(end)

    def _set(self, status: str, stamp: str) -> None:
        self.batch["status"] = status
        self.batch[stamp] = self.batch[stamp] or int(time.time())

    def _cancelled(self) -> bool:
        if self.batch["status"] != "cancelling":
            return False
        self._end("cancelled")
        return True

    def _end(self, status: str, errors: Optional[dict[str, Any]] = None) -> None:
        self.batch["status"] = status
        self.batch[f"{status}_at"] = int(time.time())
        if errors is not None:
            self.batch["errors"] = errors

    def _validate(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The request lines, or OpenAI's per-line validation errors."""
        _, data = self.service.files[self.batch["input_file_id"]]
        lines: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(data.splitlines(), 1):
            if not raw.strip():
                continue
            problem = self._line_problem(raw, seen)
            if problem or self.knobs.fail_validation:
                problems.append({"code": "invalid_request", "message": problem or
                                 "The request line was refused (fail_validation knob).",
                                 "param": None, "line": number})
                continue
            lines.append(json.loads(raw))
        return lines, problems

    def _line_problem(self, raw: bytes, seen: set[str]) -> Optional[str]:
        try:
            line = json.loads(raw)
        except ValueError:
            return "The line is not valid JSON."
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            return "Missing custom_id."
        if line["custom_id"] in seen:
            return f"Duplicate custom_id {line['custom_id']!r}."
        seen.add(line["custom_id"])
        if line.get("url") != self.batch["endpoint"] or line.get("method") != "POST":
            return f"The url must be {self.batch['endpoint']} with method POST."
        return None if isinstance(line.get("body"), dict) else "Missing body."

    async def _run_lines(self, lines: list[dict[str, Any]]) -> str:
        """Run every line; returns how the batch ends."""
        for done, line in enumerate(lines):
            if self.batch["status"] == "cancelling":
                return "cancelled"
            if self.knobs.expire_after is not None and done >= self.knobs.expire_after:
                for rest in lines[done:]:
                    self._add_error(rest["custom_id"], "batch_expired",
                                    "This request could not be executed before the "
                                    "completion window expired.")
                return "expired"
            self._run_line(line)
            if self.knobs.line_seconds:
                await asyncio.sleep(self.knobs.line_seconds)
            elif done % 200 == 199:
                await asyncio.sleep(0)     # let polls in
        return "completed"

    def _run_line(self, line: dict[str, Any]) -> None:
        status, body = self.service.handler(line["url"], line["body"])
        if self.knobs.quirky and isinstance(body, dict):
            if isinstance(body.get("error"), dict):
                body["error"].pop("code", None)
            elif "usage" in body:
                body["usage"] = None
        response = {"status_code": status, "request_id": _new_id("req_"),
                    "body": json.dumps(body) if self.knobs.quirky else body}
        record = json.dumps({"id": _new_id("batch_req_"), "custom_id": line["custom_id"],
                             "response": response, "error": None}).encode() + b"\n"
        counts = self.batch["request_counts"]
        if 200 <= status < 300:
            self.output.append(record)
            counts["completed"] += 1
        else:
            self.errors.append(record)
            counts["failed"] += 1

    def _add_error(self, custom_id: str, code: str, message: str) -> None:
        error = {"message": message} if self.knobs.quirky else {"code": code, "message": message}
        self.errors.append(json.dumps({"id": _new_id("batch_req_"), "custom_id": custom_id,
                                       "response": None, "error": error}).encode() + b"\n")
        self.batch["request_counts"]["failed"] += 1

    def _write_files(self) -> None:
        name = self.batch["id"]
        if self.output:
            meta = self.service.add_file(f"{name}_output.jsonl", "batch_output",
                                         b"".join(self.output))
            self.batch["output_file_id"] = meta["id"]
        if self.errors or self.knobs.quirky:
            meta = self.service.add_file(f"{name}_error.jsonl", "batch_output",
                                         b"".join(self.errors))
            self.batch["error_file_id"] = meta["id"]


def parse_multipart(content_type: str, body: bytes
                    ) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(form fields, files as (filename, data)) of a multipart/form-data body."""
    _, _, boundary = content_type.partition("boundary=")
    boundary = boundary.split(";")[0].strip().strip('"')
    if not content_type.startswith("multipart/form-data") or not boundary:
        raise RequestError(400, "Expected a multipart/form-data body.")
    values: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part[2:].partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = _disposition(head.decode("utf-8", "replace"))
        if "filename" in disposition:
            files[disposition.get("name", "")] = (disposition["filename"], data)
        else:
            values[disposition.get("name", "")] = data.decode("utf-8", "replace")
    return values, files


def _disposition(head: str) -> dict[str, str]:
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            found = {}
            for piece in value.split(";")[1:]:
                key, _, val = piece.strip().partition("=")
                found[key] = val.strip('"')
            return found
    return {}


def error_reply(status: int, message: str) -> tuple[int, Any]:
    """A handler's answer for a request it could not run."""
    return status, json.loads(error_body(message, "server_error"))


def app_handler(app: Any) -> Handler:
    """Run a batch line through ``app``'s own handlers, as if it had been a request: chat
    completions, embeddings, and the native APIs (Responses, Anthropic Messages)."""
    from .dialects import native_api
    from .embeddings import embeddings_reply
    from .plans import Delayed, Request, Truncated

    def run(url: str, body: Any) -> tuple[int, Any]:
        request = Request("POST", url, "", {"anthropic-version": "2023-06-01"},
                          json.dumps(body).encode(), True)
        native = native_api(request)
        try:
            if url == "/v1/embeddings":
                return 200, embeddings_reply(body, app.config.models)
            plan, _ = native.chat(app, request) if native else app._chat(request, None)
        except RequestError as exc:
            if native is not None:
                return exc.status, json.loads(native.error(exc.status, exc.message).body)
            return exc.status, json.loads(error_body(exc.message, exc.type, exc.param, exc.code))
        while isinstance(plan, (Delayed, Truncated)):
            plan = plan.plan if isinstance(plan, Delayed) else plan.reply
        if not isinstance(plan, Reply):
            return error_reply(500, "The request was dropped.")
        return plan.status, json.loads(plan.body)
    return run
