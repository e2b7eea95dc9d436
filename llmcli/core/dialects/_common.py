"""Pieces the native dialects share: reading llmcli's canonical request (an OpenAI chat
body) and building llmcli's reply types. Nothing here knows any one API."""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping, Optional

from ..chat import load_json, shorten, stream_error, text_of
from ..errors import InvalidResponseError

# Canonical body fields that every dialect reads itself; anything else is an extra
# field (--param) that goes into the native body as it is.
CANONICAL = frozenset({"model", "messages", "stream", "stream_options", "temperature",
                       "top_p", "max_tokens", "max_completion_tokens", "stop",
                       "response_format"})
# finish_reason values llmcli promises (docs/output.md)
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls")


def extras(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``body`` no dialect maps: sent natively, as the user wrote them."""
    return {k: v for k, v in body.items() if k not in CANONICAL and v is not None}


def max_tokens(body: Mapping[str, Any]) -> Optional[int]:
    """``max_completion_tokens`` (OpenAI's newer name) or ``max_tokens``."""
    value = body.get("max_completion_tokens")
    return value if value is not None else body.get("max_tokens")


def stop_list(body: Mapping[str, Any]) -> Optional[list[str]]:
    """``stop`` as a list (the chat API takes a string or a list)."""
    stop = body.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def json_schema(body: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The ``json_schema`` object of a ``response_format`` asking for one, else None."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" \
            and isinstance(fmt.get("json_schema"), dict):
        return fmt["json_schema"]
    return None


def split_system(messages: Any) -> tuple[Optional[str], list[dict[str, Any]]]:
    """System (and developer) messages joined into one instruction text, and the rest:
    the native APIs take the system prompt apart from the turns."""
    system: list[str] = []
    rest: list[dict[str, Any]] = []
    for message in messages or []:
        if not isinstance(message, dict):
            continue
        if message.get("role") in ("system", "developer"):
            system.append(text_of(message.get("content")))
        else:
            rest.append(message)
    return ("\n\n".join(system) if system else None), rest


def parts_of(content: Any) -> list[dict[str, Any]]:
    """Content as a list of canonical parts (a string is one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in content]
    return [{"type": "text", "text": str(content)}]


def image_url(part: Mapping[str, Any]) -> str:
    """The URL of an ``image_url`` part (an object with ``url``, or a bare string)."""
    value = part.get("image_url")
    return str(value.get("url") or "") if isinstance(value, dict) else str(value or "")


def data_url(url: str) -> Optional[tuple[str, str]]:
    """``data:MIME;base64,DATA`` -> (MIME, DATA); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep:
        return None
    mime = head.split(";", 1)[0] or "application/octet-stream"
    return mime, data


def file_part(part: Mapping[str, Any]) -> dict[str, Any]:
    """The ``file`` object of a canonical file part."""
    value = part.get("file")
    return value if isinstance(value, dict) else {}


def usage(prompt: Any, completion: Any, total: Any = None) -> Optional[dict[str, int]]:
    """Usage in llmcli's names; None when the API sent no counts at all."""
    if prompt is None and completion is None and total is None:
        return None
    p, c = count(prompt), count(completion)
    return {"prompt_tokens": p, "completion_tokens": c,
            "total_tokens": count(total) if total is not None else p + c}


def finish(table: Mapping[str, str], reason: Any) -> Optional[str]:
    """A native finish/stop reason in llmcli's words through ``table``: an unknown one
    is ``stop``, none is None."""
    return None if reason is None else table.get(str(reason), "stop")


def count(value: Any) -> int:
    """A token count as an int; anything that is not a number (servers send odd
    shapes: "lots", an object) counts 0 rather than failing the reply."""
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one (servers send odd shapes)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def load_object(body: bytes, status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    """A 2xx body as a JSON object; an ``error`` object in it raised as that error."""
    from ..chat import request_id_of

    request_id = request_id_of(headers)
    obj = load_json(body, status, request_id)
    if not isinstance(obj, dict):
        raise InvalidResponseError(f"the response is not a JSON object: "
                                   f"{shorten(str(obj), 80)!r}", status=status,
                                   request_id=request_id, body=obj)
    if obj.get("error"):
        raise stream_error(obj, request_id, streaming=False)
    return obj


_raw_decode = json.JSONDecoder().raw_decode


def load_event(data: str, request_id: Optional[str]) -> Any:
    """One stream event's JSON (the fast path of ``json.loads``)."""
    try:
        obj, end = _raw_decode(data)
    except (ValueError, RecursionError):
        end = -1
    if end == len(data):
        return obj
    try:
        return json.loads(data)
    except RecursionError:
        raise InvalidResponseError("a stream event holds JSON nested too deeply to read",
                                   request_id=request_id) from None
    except ValueError:
        raise InvalidResponseError(f"a stream event is not JSON: {shorten(data, 80)!r}",
                                   request_id=request_id) from None


def model_list(items: Any, key: str, status: int,
               strip: str = "") -> list[dict[str, Any]]:
    """Model objects from a list field, each given an ``id`` (``key``, less ``strip``)."""
    if not isinstance(items, list):
        raise InvalidResponseError("the models response has no list of models", status=status)
    found = []
    for item in items:
        obj = dict(item) if isinstance(item, dict) else {key: str(item)}
        name = str(obj.get(key) or obj.get("id") or "")
        obj["id"] = name[len(strip):] if strip and name.startswith(strip) else name
        found.append(obj)
    return found


def each_dict(items: Any) -> Iterator[dict[str, Any]]:
    """The objects in a list, skipping anything else."""
    for item in as_list(items):
        if isinstance(item, dict):
            yield item
