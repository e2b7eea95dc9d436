"""Input items -> Batch API request lines, cut into parts that fit the provider's limits.

Each part is written to a temporary file (uploaded from disk, then removed), so memory
stays flat however long the input is. A part's membership is kept as ranges of input
line numbers: a range is broken by every item the part does not take (done already,
held by another live part, or a bad line), so the ranges name exactly its items.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from ..reader import CHAT_URLS, Item

MAX_LINES = 50_000
MAX_BYTES = 190 * 1000 * 1000
CHAT, EMBEDDINGS, RESPONSES = "/v1/chat/completions", "/v1/embeddings", "/v1/responses"
MESSAGES = "/v1/messages"      # Anthropic Message Batches
ENDPOINTS = (CHAT, EMBEDDINGS, RESPONSES)
_DIALECT_OF = {RESPONSES: "openai-responses", MESSAGES: "anthropic"}
_EMBEDDING_FIELDS = ("model", "input", "dimensions", "encoding_format", "user")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def urls_for(endpoint: str) -> tuple[str, ...]:
    """The ``url`` values an input line may carry for ``endpoint``."""
    return CHAT_URLS if endpoint == CHAT else (endpoint, endpoint[len("/v1"):])


def endpoint_of_input(first_line: Optional[bytes]) -> Optional[str]:
    """The endpoint a Batch API input names on its first line, if any."""
    try:
        url = json.loads(first_line).get("url") if first_line else None
    except (ValueError, AttributeError):
        return None
    if isinstance(url, str) and not url.startswith("/v1"):
        url = "/v1" + url
    return url if url in ENDPOINTS else None


def shape_body(body: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """A canonical chat body (what the reader builds from a prompt) in ``endpoint``'s
    native shape; a body already in that shape (a Batch API line) is left as it is."""
    if endpoint == CHAT or "messages" not in body:
        return body
    if endpoint == EMBEDDINGS:
        text = "\n".join(str(m["content"]) for m in body["messages"]
                         if isinstance(m, dict) and m.get("role") == "user"
                         and isinstance(m.get("content"), str))
        return {k: v for k, v in dict(body, input=text).items() if k in _EMBEDDING_FIELDS}
    from ...core.dialects import get_dialect    # the dialect layer knows the native shape

    native = get_dialect(_DIALECT_OF[endpoint]).build_request(body, stream=False).body
    return dict(native or {})


def request_line(item: Item, endpoint: str) -> bytes:
    """One request line for ``item`` (which has a body): an OpenAI Batch API line, or
    an Anthropic Message Batches request (``custom_id`` and ``params``)."""
    assert item.body is not None
    body = shape_body(item.body, endpoint)
    if endpoint == MESSAGES:
        return (_encode({"custom_id": item.id, "params": body}) + "\n").encode("utf-8")
    return (_encode({"custom_id": item.id, "method": "POST", "url": endpoint,
                     "body": body}) + "\n").encode("utf-8")


@dataclass
class PartFile:
    """One part as written: its ranges, size, and the file (``None`` on a dry run)."""

    ranges: list[list[int]] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    offset: int = 0        # byte offset of its first line in the input
    path: Optional[str] = None

    def row(self) -> dict[str, Any]:
        """The part as a row of the ``--dry-run`` table."""
        return {"lines": self.lines, "bytes": self.bytes,
                "first_line": self.ranges[0][0] if self.ranges else None,
                "last_line": self.ranges[-1][1] if self.ranges else None}


class Splitter:
    """Cuts the items into parts of at most ``max_lines`` lines and ``max_bytes``."""

    def __init__(self, endpoint: str, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES,
                 *, write: bool = True, folder: Optional[str] = None,
                 prefix: str = "llmcli-remote-") -> None:
        self.endpoint, self.max_lines, self.max_bytes = endpoint, max_lines, max_bytes
        self.write, self.folder, self.prefix = write, folder, prefix
        self.too_big: list[Item] = []     # a single line over max_bytes

    def parts(self, items: Iterator[Item], take: Callable[[Item], bool],
              bad: Callable[[Item], None]) -> Iterator[PartFile]:
        """The parts, each complete and closed when yielded. ``take(item)`` says
        whether the item goes out now; ``bad(item)`` gets each line that cannot."""
        part: Optional[PartFile] = None
        out: Any = None
        last_taken = False
        for item in items:
            if not take(item):
                last_taken = False
                continue
            if item.body is None:
                bad(item)
                last_taken = False
                continue
            data = request_line(item, self.endpoint)
            if len(data) > self.max_bytes:
                item.error = f"line {item.line}: its request is {len(data):,} bytes, over " \
                             f"--remote-max-bytes {self.max_bytes:,}"
                bad(item)
                last_taken = False
                continue
            if part is not None and (part.lines >= self.max_lines
                                     or part.bytes + len(data) > self.max_bytes):
                self._close(out)
                yield part
                part = None
            if part is None:
                part, out = self._open(item)
                last_taken = False
            self._add(part, out, item, data, last_taken)
            last_taken = True
        if part is not None:
            self._close(out)
            yield part

    def _open(self, item: Item) -> tuple[PartFile, Any]:
        part = PartFile(offset=item.offset)
        if not self.write:
            return part, None
        fd, part.path = tempfile.mkstemp(prefix=self.prefix, suffix=".jsonl",
                                         dir=self.folder)
        return part, os.fdopen(fd, "wb", buffering=1 << 20)

    @staticmethod
    def _add(part: PartFile, out: Any, item: Item, data: bytes, contiguous: bool) -> None:
        if contiguous:
            part.ranges[-1][1] = item.line
        else:
            part.ranges.append([item.line, item.line])
        part.lines += 1
        part.bytes += len(data)
        if out is not None:
            out.write(data)

    @staticmethod
    def _close(out: Any) -> None:
        if out is not None:
            out.close()
