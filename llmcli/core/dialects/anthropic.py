"""Anthropic Messages API (`POST /messages`): ``x-api-key`` and ``anthropic-version``
headers, ``system`` apart from the turns, ``max_tokens`` required; content blocks back,
and the ``message_start`` ... ``message_stop`` event stream.

Structured output: a canonical ``response_format`` json_schema becomes the Messages
API's ``output_config.format`` (``{"type": "json_schema", "schema": ...}``), whose
reply is the JSON as text, so nothing is parsed differently."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from ..chat import ChatResult, StreamFold, load_json, request_id_of, stream_error, text_of
from ..errors import InvalidResponseError
from . import HTTPRequest
from ._common import (as_dict, count, data_url, each_dict, extras, file_part, finish, image_url,
                      json_schema, load_event, load_object, max_tokens, model_list, parts_of,
                      split_system, stop_list, usage)

_raw_decode = json.JSONDecoder().raw_decode
API_VERSION = "2023-06-01"
# The API requires max_tokens; this is used when neither --max-tokens nor the config
# sets it (docs/providers.md): room for a long answer on every current Claude model.
DEFAULT_MAX_TOKENS = 4096
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
          "max_tokens": "length", "model_context_window_exceeded": "length",
          "tool_use": "tool_calls", "refusal": "content_filter"}


def blocks(content: Any) -> Any:
    """Canonical content as Anthropic content: a string stays a string."""
    if isinstance(content, str) or content is None:
        return content or ""
    return [_block(p) for p in parts_of(content)]


def _block(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "image_url":
        return {"type": "image", "source": _source(image_url(part))}
    if kind == "file":
        f = file_part(part)
        if f.get("file_id"):
            return {"type": "document", "source": {"type": "file", "file_id": f["file_id"]}}
        block = {"type": "document", "source": _source(str(f.get("file_data") or ""))}
        if f.get("filename"):
            block["title"] = f["filename"]
        return block
    return part   # already an Anthropic block (tool_result, ...)


def _source(url: str) -> dict[str, Any]:
    """A data URL as a base64 source (plain text as a text source), else a url source."""
    parsed = data_url(url)
    if parsed is None:
        return {"type": "url", "url": url}
    mime, data = parsed
    if mime.startswith("text/"):
        import base64
        import binascii

        try:
            text = base64.b64decode(data).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            text = None
        if text is not None:
            return {"type": "text", "media_type": "text/plain", "data": text}
    return {"type": "base64", "media_type": mime, "data": data}


def result_of(obj: dict[str, Any], request_id: Optional[str], status: int = 200) -> ChatResult:
    """A Message object as a result."""
    content = obj.get("content")
    if isinstance(content, str):   # liberal: the text where a list of blocks was documented
        content = [content]
    if not isinstance(content, list):
        raise InvalidResponseError("the response has no content list", status=status,
                                   request_id=request_id, body=obj)
    text = "".join(b if isinstance(b, str) else text_of(b.get("text")) for b in content
                   if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))
    return ChatResult(content=text, finish_reason=finish_reason(obj.get("stop_reason")),
                      usage=usage_of(obj.get("usage")), id=obj.get("id"),
                      model=obj.get("model"), raw=obj, request_id=request_id)


def finish_reason(stop_reason: Any) -> Optional[str]:
    """Anthropic's stop_reason in llmcli's words (unknown ones: stop)."""
    return finish(FINISH, stop_reason)


def usage_of(raw: Any) -> Optional[dict[str, int]]:
    """Cache reads and writes count as prompt tokens, as in OpenAI's prompt_tokens."""
    u = as_dict(raw)
    if not u:
        return None
    prompt = sum(count(u.get(k)) for k in ("input_tokens", "cache_creation_input_tokens",
                                              "cache_read_input_tokens"))
    return usage(prompt, u.get("output_tokens"))


_TEXT_DELTA = '{"type":"content_block_delta","index":'
_TEXT_KEY = '"delta":{"type":"text_delta","text":"'
_FIRST_BLOCK = _TEXT_DELTA + "0," + _TEXT_KEY   # the usual case: one text block, index 0
_scanstring = json.decoder.scanstring   # type: ignore[attr-defined]


def _delta_text(data: str) -> Optional[str]:
    """The text of a compact `content_block_delta` text event, decoded without the
    dict around it; None when the event is shaped any other way (then it is parsed
    whole, so this shortcut can only be faster, never different)."""
    at = data.find(_TEXT_KEY, len(_TEXT_DELTA))
    if at < 0 or not data[len(_TEXT_DELTA):at - 1].isdigit() or data[at - 1] != ",":
        return None
    try:
        text, end = _scanstring(data, at + len(_TEXT_KEY))
    except ValueError:
        return None
    return text if data[end:] == "}}" else None


class AnthropicStream(StreamFold):
    """Folds Messages stream events; `message_stop` ends the stream."""

    __slots__ = ("_usage",)

    def __init__(self, request_id: Optional[str] = None) -> None:
        super().__init__(request_id)
        self._usage: dict[str, Any] = {}

    def apply(self, data: str, event: Optional[str] = None) -> Optional[str]:
        """One event; returns the text of a `text_delta`."""
        if data.startswith(_FIRST_BLOCK) and data.endswith('"}}'):   # once per token
            first = data[len(_FIRST_BLOCK):-3]
            if "\\" not in first and '"' not in first:   # nothing to unescape: that is it
                if first:
                    self.parts.append(first)
                return first or None
        if data.startswith(_TEXT_DELTA):   # read only its text
            text = _delta_text(data)
            if text is not None:
                if text:
                    self.parts.append(text)
                return text or None
        try:   # load_event inlined: this runs once per token
            obj, end = _raw_decode(data)
        except (ValueError, RecursionError):   # load_event says which
            end = -1
        if end != len(data):
            obj = load_event(data, self.request_id)
        if type(obj) is not dict:
            return None
        kind = obj.get("type") or event
        if kind == "content_block_delta":
            delta = obj.get("delta")
            text = delta.get("text") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                self.parts.append(text)
                return text
            return None
        if kind == "message_start":
            self._start(as_dict(obj.get("message")))
        elif kind == "message_delta":
            self._delta(obj)
        elif kind == "message_stop":
            self.done = True
            self.finish_reason = self.finish_reason or "stop"
        elif kind == "error" or obj.get("error"):
            raise stream_error(obj, self.request_id)
        return None

    def _start(self, message: dict[str, Any]) -> None:
        self.id, self.model = message.get("id"), message.get("model")
        self._usage.update(as_dict(message.get("usage")))
        self.usage = usage_of(self._usage)

    def _delta(self, obj: dict[str, Any]) -> None:
        reason = as_dict(obj.get("delta")).get("stop_reason")
        if reason is not None:
            self.finish_reason = finish_reason(reason)
        # message_delta's usage is cumulative: its counts replace message_start's.
        self._usage.update({k: v for k, v in as_dict(obj.get("usage")).items() if v is not None})
        self.usage = usage_of(self._usage)


class Anthropic:
    """The Messages API dialect."""

    name = "anthropic"

    def build_request(self, body: Mapping[str, Any], *, stream: bool) -> HTTPRequest:
        """``system`` apart, ``max_tokens`` always, ``stop`` as ``stop_sequences``."""
        system, turns = split_system(body.get("messages"))
        out: dict[str, Any] = {
            "model": body.get("model"),
            "max_tokens": max_tokens(body) or DEFAULT_MAX_TOKENS,
            "messages": [{"role": m.get("role") or "user", "content": blocks(m.get("content"))}
                         for m in turns]}
        if system is not None:
            out["system"] = system
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = body[name]
        if stop_list(body):
            out["stop_sequences"] = stop_list(body)
        more = extras(body)
        schema = json_schema(body)
        if schema is not None:   # merged with an output_config from --param (effort, ...)
            more["output_config"] = {**as_dict(more.get("output_config")), "format": {
                "type": "json_schema", "schema": schema.get("schema") or {}}}
        out.update(more)
        if stream:
            out["stream"] = True
        return HTTPRequest("POST", "/messages", out, headers={"anthropic-version": API_VERSION})

    def parse_response(self, body: bytes, status: int, headers: Mapping[str, str]) -> ChatResult:
        """A Message object; `{"type": "error", ...}` with a 2xx is raised."""
        return result_of(load_object(body, status, headers), request_id_of(headers), status)

    def stream_state(self, request_id: Optional[str] = None) -> AnthropicStream:
        """A fresh folder for Messages stream events."""
        return AnthropicStream(request_id)

    def models_request(self) -> HTTPRequest:
        """`GET /models`, one page of up to 1000."""
        return HTTPRequest("GET", "/models", headers={"anthropic-version": API_VERSION},
                           query={"limit": "1000"})

    def parse_models(self, body: bytes, status: int,
                     headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """The `data` list of model objects."""
        obj = load_json(body, status, request_id_of(headers))
        return model_list(obj.get("data") if isinstance(obj, dict) else obj, "id", status)


DIALECT = Anthropic()
