"""The OpenAI Files and Batches endpoints, sync, on httpx (any OpenAI-compatible URL).

Uploads stream the part's file from disk inside a multipart body whose length is known
up front (no chunked encoding, which some servers refuse), so memory stays flat;
downloads stream to disk. Reads and uploads are retried by the core's policy; creating
a batch is not (a retried create could pay twice): the runner looks the batch up first.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Iterator, Optional, TypeVar
from urllib.parse import quote

# First: ._httpx imports httpx without httpx's own CLI tool.
from ...core import _httpx  # noqa: F401  # isort: skip

import httpx

from ...core.chat import check_status, load_json
from ...core.client import map_httpx_errors, tls_verify
from ...core.errors import APIError, InvalidResponseError
from ...core.options import ClientOptions
from ...core.retry import Attempts, Deadline, RetryPolicy

CHUNK = 1 << 20
T = TypeVar("T")


def multipart(path: str, filename: str, purpose: str, boundary: str) -> tuple[int, Callable[[], Iterator[bytes]]]:
    """(length, a maker of the body's chunks) of a ``multipart/form-data`` upload of
    ``path`` as field ``file`` with a ``purpose`` field; the file is read in 1 MB chunks."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
            f"{purpose}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{quote(filename)}\"\r\nContent-Type: application/jsonl\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = os.path.getsize(path)

    def chunks() -> Iterator[bytes]:
        yield head
        with open(path, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                yield chunk
        yield tail
    return len(head) + size + len(tail), chunks


def path_segment(name: str) -> str:
    """An id as one URL path segment (a ``/`` in it cannot reach another endpoint)."""
    return quote(name, safe="")


class BatchAPI:
    """``/files`` and ``/batches`` of one base URL. Use as a context manager."""

    uploads = True        # requests go up as a file first, then the batch names it
    has_metadata = True   # batches carry llmcli's job and part tags

    def __init__(self, options: ClientOptions, *, transport: Optional[httpx.BaseTransport] = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options, self._sleep = options, sleep
        options.validate()
        self._http = httpx.Client(transport=transport, verify=tls_verify(options), proxy=options.proxy,
                                  params=options.query_params() or None, follow_redirects=False,
                                  timeout=httpx.Timeout(options.read_timeout,
                                                        connect=options.connect_timeout))
        self.on_chunk: Optional[Callable[[int], None]] = None   # upload progress / tests
        # --max-time bounds the whole remote command: every request of the job (a stalled
        # download too), not only the wait between polls
        self.deadline = Deadline(options.max_time)

    def __enter__(self) -> "BatchAPI":
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    # -- files ---------------------------------------------------------------
    def upload(self, path: str, filename: str, purpose: str = "batch") -> dict[str, Any]:
        """``POST /files``: upload ``path`` streamed from disk; returns the file object."""
        boundary = "llmcli" + os.urandom(12).hex()
        length, chunks = multipart(path, filename, purpose, boundary)
        headers = {"content-type": f"multipart/form-data; boundary={boundary}",
                   "content-length": str(length)}
        return self._json("POST", "/files", lambda: self._counted(chunks()), headers)

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.on_chunk is not None:
                self.on_chunk(len(chunk))
            yield chunk

    def download(self, file_id: str, dest: str) -> int:
        """``GET /files/{id}/content`` streamed to ``dest``; returns the bytes written."""
        return self._retrying(lambda: self._download_once(file_id, dest), self.options.retry)

    def _download_once(self, file_id: str, dest: str) -> int:
        url = self.options.url(f"/files/{path_segment(file_id)}/content")
        return self._stream_to(url, dest, self.options.request_headers())

    def _stream_to(self, url: str, dest: str, headers: dict[str, str]) -> int:
        """``GET url`` streamed to the file ``dest`` (an error status raised as its
        error); returns the bytes written."""
        written = 0
        with map_httpx_errors(self.options, self.deadline):
            with self._http.stream("GET", url, headers=headers,
                                   timeout=self._timeout()) as response:
                if response.status_code >= 300:
                    check_status(response.status_code, response.headers, response.read(),
                                 self.options.secrets())
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        self.deadline.check()   # a server trickling bytes
                        out.write(chunk)
                        written += len(chunk)
        return written

    def _timeout(self) -> httpx.Timeout:
        """The client's timeouts, cut to what is left of --max-time."""
        options = self.options
        return httpx.Timeout(self.deadline.cap(options.read_timeout),
                             connect=self.deadline.cap(options.connect_timeout))

    def delete_file(self, file_id: str) -> None:
        """``DELETE /files/{id}`` (a file that is gone already is fine)."""
        try:
            self._json("DELETE", f"/files/{path_segment(file_id)}")
        except Exception:   # cleaning up is best effort: never fail a job over it
            pass

    # -- batches -------------------------------------------------------------
    def create(self, file_id: str, endpoint: str, window: str,
               metadata: dict[str, str]) -> dict[str, Any]:
        """``POST /batches``, sent once (see the module docstring)."""
        body = json.dumps({"input_file_id": file_id, "endpoint": endpoint,
                           "completion_window": window, "metadata": metadata}).encode()
        return self._json("POST", "/batches", lambda: body,
                          {"content-type": "application/json"}, retry=False)

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """``GET /batches/{id}``."""
        return self._json("GET", f"/batches/{path_segment(batch_id)}")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """``POST /batches/{id}/cancel``."""
        return self._json("POST", f"/batches/{path_segment(batch_id)}/cancel")

    def list(self, after: Optional[str] = None, limit: int = 100) -> dict[str, Any]:
        """One page of ``GET /batches`` (newest first)."""
        query = f"?limit={limit}" + (f"&after={quote(after, safe='')}" if after else "")
        return self._json("GET", "/batches" + query)

    def each_batch(self) -> Iterator[dict[str, Any]]:
        """Every batch, newest first, page after page, each once. A server whose pages
        lead back to ones already read (``has_more`` forever) ends the walk when a page
        brings no batch not seen before, instead of looping for ever."""
        after: Optional[str] = None
        seen: set[Any] = set()
        while True:
            page = self.list(after)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list) or not data:
                return
            fresh = [b for b in data if isinstance(b, dict) and _key(b) not in seen]
            seen.update(_key(b) for b in fresh)
            yield from fresh
            last = data[-1].get("id") if isinstance(data[-1], dict) else None
            if not fresh or not page.get("has_more") or not last or last == after:
                return
            after = last

    # -- the send loop -------------------------------------------------------
    def _json(self, method: str, path: str, body: Optional[Callable[[], Any]] = None,
              headers: Optional[dict[str, str]] = None, *, retry: bool = True) -> Any:
        policy = self.options.retry if retry else RetryPolicy(max_retries=0)
        return self._retrying(lambda: self._send(method, path, body() if body else None,
                                                 headers or {}), policy)

    def _retrying(self, call: Callable[[], T], policy: RetryPolicy) -> T:
        """``call()`` again after each error ``policy`` retries, sleeping its delay."""
        attempts = Attempts(policy, self.deadline)
        while True:
            try:
                return call()
            except APIError as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise
            if delay > 0:
                self._sleep(delay)

    def _send(self, method: str, path: str, content: Any, headers: dict[str, str]) -> Any:
        url = self.options.url(path)
        with map_httpx_errors(self.options, self.deadline):
            response = self._http.request(method, url, content=content, timeout=self._timeout(),
                                          headers=self.options.request_headers() | headers)
        check_status(response.status_code, response.headers, response.content,
                     self.options.secrets())
        data = load_json(response.content, response.status_code,
                         response.headers.get("x-request-id"))
        if not isinstance(data, dict):
            raise InvalidResponseError(f"{method} {path}: expected a JSON object",
                                       status=response.status_code)
        return data


def _key(batch: dict[str, Any]) -> str:
    """What tells two listed batches apart: the id (the whole object when it has none)."""
    ident = batch.get("id")
    return ident if isinstance(ident, str) else json.dumps(batch, sort_keys=True, default=str)
