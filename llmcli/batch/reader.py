"""Reading batch input, streamed: plain text, JSONL, or OpenAI Batch API requests.

Every non-blank line is one item. Its id is the line's ``custom_id`` or ``id``, else
its line number (1-based, blank lines counted, so ids stay put across runs). A line
that cannot be sent (bad JSON, no prompt) is still an item: one whose ``body`` is
``None`` and whose ``error`` says why, so it gets an error record like any failure.

The input is read twice and never held: :func:`scan` (the pre-pass: count, duplicate
ids, already-done ids) before anything is sent, then :func:`read_items` as workers ask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from ..core.chat import with_system, without_stream_fields
from ..core.errors import LLMCLIError
from .ids import IdSet

CHAT_URLS = ("/v1/chat/completions", "/chat/completions")
RESPONSES_URLS = ("/v1/responses", "/responses")   # read into the chat shape
# JSONL keys that are not request fields; every other key is sent as one.
RESERVED = frozenset(("id", "custom_id", "prompt", "messages", "system", "attachments",
                      "schema"))
MAX_REPORTED_DUPLICATES = 5
_BOM = b"\xef\xbb\xbf"


class InputError(LLMCLIError):
    """The input as a whole cannot be run: unreadable, or ids used twice."""


class Item:
    """One input line: ``seq`` is its place among this run's items (the output order)."""

    __slots__ = ("seq", "line", "id", "body", "error", "offset")

    def __init__(self, seq: int, line: int, id: str, body: Optional[dict[str, Any]],
                 error: Optional[str] = None) -> None:
        self.seq, self.line, self.id, self.body, self.error = seq, line, id, body, error
        self.offset = 0     # where its line starts in the input (remote parts seek there)


@dataclass(frozen=True)
class Defaults:
    """Request options for every item unless its line sets them (the `chat` flags)."""

    model: Optional[str] = None
    system: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    limits: Optional[dict[str, int]] = None     # attachment size limits (core.attachments)

    def base(self) -> dict[str, Any]:
        """The body fields every request starts from."""
        base = {"model": self.model} if self.model else {}
        base.update((k, v) for k, v in self.params.items() if v is not None)
        return base


@dataclass(frozen=True)
class Scan:
    """What the pre-pass learned: the format and how many items to run or skip."""

    format: str
    total: int      # items this run will write a record for
    skipped: int    # items an earlier run already finished (resume)


class _BadLine(Exception):
    """Why one line cannot be sent; becomes that item's error record."""


def lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number, content without the line end) of each non-blank line."""
    for number, _, raw in lines_at(path):
        yield number, raw


def lines_at(path: str, offset: int = 0, first: int = 1) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, content) of each non-blank line, starting at byte
    ``offset``, which is the start of line ``first``."""
    with open(path, "rb") as f:
        f.seek(offset)
        for number, raw in enumerate(f, first):
            start = offset
            offset += len(raw)
            if number == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                yield number, start, raw


def detect_format(path: str) -> str:
    """``plain``, ``jsonl`` or ``openai-batch``, from the first non-blank line. It is
    JSON only if it parses as a JSON object: a prompt may start with ``{`` too."""
    for _, raw in lines(path):
        if not raw.lstrip().startswith(b"{"):
            return "plain"
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return "plain"
        is_batch = "custom_id" in obj and isinstance(obj.get("body"), dict)
        return "openai-batch" if is_batch else "jsonl"
    return "plain"


def json_id(obj: Any, line: int) -> tuple[str, Optional[str]]:
    """The id of a parsed line and, when that id is unusable, why."""
    if not isinstance(obj, dict):
        return str(line), None
    value = obj.get("custom_id", obj.get("id"))
    if value is None:
        return str(line), None
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value), None
    return str(line), f"id must be a non-empty string or a number, not {json.dumps(value)}"


def item_ids(path: str, fmt: str) -> Iterator[tuple[int, str]]:
    """(line number, id) of every item, as :func:`read_items` will assign them."""
    for line, raw in lines(path):
        yield line, line_id(fmt, line, raw)


def scan(path: str, fmt: str, done: Optional[IdSet] = None) -> Scan:
    """The pre-pass: resolve ``auto``, count items, and refuse duplicate ids."""
    if fmt == "auto":
        fmt = detect_format(path)
    seen, suspects, total, skipped = IdSet(), set(), 0, 0
    check = fmt != "plain"   # line numbers cannot repeat
    for _, key in item_ids(path, fmt):
        if check and not seen.add(key):
            suspects.add(key)
        if done and key in done:
            skipped += 1
        else:
            total += 1
    if suspects:
        duplicates = find_duplicates(path, fmt, suspects)
        if duplicates:
            raise InputError(_duplicates_message(duplicates))
    return Scan(fmt, total, skipped)


def find_duplicates(path: str, fmt: str, suspects: set[str]) -> dict[str, list[int]]:
    """The ids among ``suspects`` that really occur twice, with their line numbers: the
    hash set only says "maybe", so this second pass compares the ids themselves."""
    where: dict[str, list[int]] = {}
    for line, key in item_ids(path, fmt):
        if key in suspects:
            where.setdefault(key, []).append(line)
    return {k: v for k, v in where.items() if len(v) > 1}


def _duplicates_message(duplicates: dict[str, list[int]]) -> str:
    shown = list(duplicates.items())[:MAX_REPORTED_DUPLICATES]
    parts = [f"{key!r} on lines {', '.join(map(str, where[:5]))}" for key, where in shown]
    more = len(duplicates) - len(shown)
    return (f"{len(duplicates)} id(s) used more than once, nothing was sent: "
            + "; ".join(parts) + (f"; and {more} more" if more > 0 else ""))


def line_id(fmt: str, line: int, raw: bytes) -> str:
    """The id of one input line, as :func:`read_items` assigns it."""
    if fmt == "plain" or (b'"id"' not in raw and b'"custom_id"' not in raw):
        return str(line)
    try:
        return json_id(json.loads(raw), line)[0]
    except (ValueError, RecursionError):     # RecursionError: nested too deeply to read
        return str(line)


def read_items(path: str, fmt: str, defaults: Defaults,
               done: Optional[IdSet] = None, urls: tuple[str, ...] = ()) -> Iterator[Item]:
    """The items to run, in input order, leaving out the ids in ``done``. ``urls``, when
    given, are the only endpoints a Batch API request line may name, and its body is
    kept as it is (remote batch); by default chat and responses lines are read."""
    seq = 0
    items = _plain_items(path, defaults) if fmt == "plain" else _json_items(path, fmt, defaults, urls)
    for item in items:
        if done and item.id in done:
            continue
        item.seq = seq
        seq += 1
        yield item


def _plain_items(path: str, defaults: Defaults) -> Iterator[Item]:
    base = defaults.base()
    head = [{"role": "system", "content": defaults.system}] if defaults.system is not None else []
    for line, offset, raw in lines_at(path):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            item = Item(0, line, str(line), None, f"line {line}: not valid UTF-8")
        else:
            body = dict(base)
            body["messages"] = [*head, {"role": "user", "content": text}]
            item = Item(0, line, str(line), body)
        item.offset = offset
        yield item


def _json_items(path: str, fmt: str, defaults: Defaults,
                urls: tuple[str, ...] = ()) -> Iterator[Item]:
    base, strict = defaults.base(), fmt == "openai-batch"
    for line, offset, raw in lines_at(path):
        item = _json_item(line, raw, base, defaults.system, strict, urls, defaults.limits)
        item.offset = offset
        yield item


def _json_item(line: int, raw: bytes, base: dict[str, Any], system: Optional[str],
               strict: bool, urls: tuple[str, ...],
               limits: Optional[dict[str, int]] = None) -> Item:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        return Item(0, line, str(line), None, f"line {line}: not valid JSON ({exc})")
    except RecursionError:
        return Item(0, line, str(line), None, f"line {line}: JSON nested too deeply to read")
    key, problem = json_id(obj, line)
    try:
        if problem:
            raise _BadLine(problem)
        return Item(0, line, key, json_body(obj, base, system, strict, urls,
                                                limits=limits))
    except _BadLine as exc:
        return Item(0, line, key, None, f"line {line}: {exc}")


def json_body(obj: Any, base: dict[str, Any], system: Optional[str],
              strict: bool = False, urls: tuple[str, ...] = (), *,
              limits: Optional[dict[str, int]] = None) -> dict[str, Any]:
    """The request body for one JSON line; raises :class:`_BadLine`."""
    if not isinstance(obj, dict):
        raise _BadLine("expected a JSON object")
    if isinstance(obj.get("body"), dict):
        return _batch_body(obj, base, system, urls)
    if strict:
        raise _BadLine("not an OpenAI Batch request: no `body` object")
    messages, prompt = obj.get("messages"), obj.get("prompt")
    if messages is not None and (not isinstance(messages, list) or not messages):
        raise _BadLine("`messages` must be a non-empty list")
    if prompt is not None and not isinstance(prompt, str):
        raise _BadLine("`prompt` must be text")
    attachments = _attachments(obj.get("attachments"), limits)
    if not messages and not (prompt and prompt.strip()) and not attachments:
        raise _BadLine("no prompt: the line needs `prompt` (text) or `messages` (a list)")
    history = list(messages or [])
    if "system" in obj:      # the line's own system prompt replaces any other
        history = with_system(history, obj["system"], replace=True)
    elif system is not None:
        history = with_system(history, system, replace=False)
    if attachments:
        from ..core.attachments import user_content

        history.append({"role": "user", "content": user_content(prompt or None, attachments)})
    elif prompt:
        history.append({"role": "user", "content": prompt})
    body = dict(base)
    body.update((k, v) for k, v in obj.items() if k not in RESERVED)
    body["messages"] = history
    if "schema" in obj:     # the line's own schema replaces --schema; null drops it
        body["response_format"] = _response_format(obj["schema"])
    return _clean(body)


def _attachments(specs: Any, limits: Optional[dict[str, int]]) -> list[Any]:
    """A line's ``attachments``: paths (relative to the current directory) and URLs."""
    if specs is None:
        return []
    if not isinstance(specs, list) or not all(isinstance(s, str) and s for s in specs):
        raise _BadLine("`attachments` must be a list of paths or URLs")
    if "-" in specs:
        raise _BadLine("`attachments` cannot read stdin ('-') in a batch")
    from ..core.attachments import AttachmentError, load_all

    try:
        return load_all(specs, limits=limits)
    except AttachmentError as exc:
        raise _BadLine(exc.message) from None


def _response_format(schema: Any) -> Optional[dict[str, Any]]:
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise _BadLine("`schema` must be a JSON Schema object")
    from ..core.schema import SchemaError, check_schema, response_format

    try:
        check_schema(schema, "`schema`")
    except SchemaError as exc:
        raise _BadLine(exc.message) from None
    return response_format(schema)


def _batch_body(obj: dict[str, Any], base: dict[str, Any], system: Optional[str],
                urls: tuple[str, ...] = ()) -> dict[str, Any]:
    accepted = urls or CHAT_URLS + RESPONSES_URLS
    method, url = obj.get("method", "POST"), obj.get("url", accepted[0])
    if str(method).upper() != "POST" or url not in accepted:
        shown = " and ".join(dict.fromkeys(u if u.startswith("/v1") else "/v1" + u
                                           for u in accepted))
        raise _BadLine(f"only POST {shown} {'is' if len(accepted) < 3 else 'are'} supported, "
                       f"not {method} {url}")
    fields = obj["body"]
    if urls and url not in CHAT_URLS:
        return _clean(dict(base, **fields))     # remote: sent as it is to its endpoint
    if url in RESPONSES_URLS:
        if not fields.get("input"):
            raise _BadLine("`body.input` must be text or a non-empty list")
        from ..core.dialects.openai_responses import responses_to_canonical

        fields = responses_to_canonical(fields)
    messages = fields.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadLine("`body.messages` must be a non-empty list")
    body = dict(base)
    body.update(fields)
    if system is not None:
        body["messages"] = with_system(messages, system, replace=False)
    return _clean(body)


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    """Batch never streams; a line's ``null`` unsets a default."""
    body, _ = without_stream_fields(body)
    if None in body.values():
        body = {k: v for k, v in body.items() if v is not None}
    return body
