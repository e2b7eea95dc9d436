"""OpenAI Responses API (`POST /responses`), also served by vLLM, Ollama, llama.cpp
and LM Studio: ``instructions`` and ``input`` items out; ``output`` items, the
``response.*`` event stream and ``input_tokens``/``output_tokens`` back."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..chat import ChatResult, StreamFold, load_json, request_id_of, stream_error, text_of
from ..errors import APIError, InvalidResponseError
from . import HTTPRequest
from ._common import (as_dict, as_list, each_dict, extras, file_part, image_url, json_schema,
                      load_event, load_object, max_tokens, model_list, parts_of,
                      split_system, usage)

_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical turns as Responses input messages (system ones go to instructions)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = str(message.get("role") or "user")
        content = message.get("content")
        if isinstance(content, str) or content is None:
            items.append({"role": role, "content": content or ""})
        else:
            kind = "output_text" if role == "assistant" else "input_text"
            items.append({"role": role, "content": [_part(p, kind) for p in parts_of(content)]})
    return items


def _part(part: dict[str, Any], text_kind: str) -> dict[str, Any]:
    """One canonical part: text, image_url or file, as its input_* item."""
    kind = part.get("type")
    if kind == "image_url":
        detail = as_dict(part.get("image_url")).get("detail") or "auto"
        return {"type": "input_image", "image_url": image_url(part), "detail": detail}
    if kind == "file":
        f = file_part(part)
        out: dict[str, Any] = {"type": "input_file"}
        if f.get("file_id"):
            out["file_id"] = f["file_id"]
        data = str(f.get("file_data") or "")
        if data.startswith("data:"):
            out["file_data"] = data
            out["filename"] = f.get("filename") or "file"
        elif data:   # a URL where the data would be: the Responses API fetches it
            out["file_url"] = data
        return out
    if kind == "text":
        return {"type": text_kind, "text": str(part.get("text") or "")}
    return part   # already native (input_audio, ...): the user knows best


def text_format(body: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """``response_format`` as the Responses ``text.format``."""
    schema = json_schema(body)
    if schema is not None:
        fmt = {"type": "json_schema", "name": schema.get("name") or "response",
               "schema": schema.get("schema") or {}}
        if "strict" in schema:
            fmt["strict"] = schema["strict"]
        return fmt
    rf = body.get("response_format")
    return {"type": rf["type"]} if isinstance(rf, dict) and rf.get("type") else None


def responses_to_canonical(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses body (a Batch API line naming /v1/responses) as llmcli's chat body,
    so local batch can send it in any dialect."""
    out = {k: v for k, v in body.items() if k not in ("input", "instructions", "text",
                                                       "max_output_tokens")}
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    raw = body.get("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    for item in each_dict(raw):
        messages.append({"role": item.get("role") or "user",
                         "content": _canonical_content(item.get("content"))})
    out["messages"] = messages
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    fmt = as_dict(as_dict(body.get("text")).get("format"))
    if fmt.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict") if k in fmt}}
    return out


def _canonical_content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    parts = []
    for p in each_dict(content):
        kind = p.get("type")
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": p.get("text", "")})
        elif kind == "input_image":
            parts.append({"type": "image_url", "image_url": {"url": p.get("image_url", "")}})
        elif kind == "input_file":
            parts.append({"type": "file", "file": {k: p[k] for k in (
                "filename", "file_data", "file_id") if k in p}})
        else:
            parts.append(p)
    return parts


def result_of(obj: dict[str, Any], request_id: Optional[str], *,
              streaming: bool = False) -> ChatResult:
    """A Response object (from a body or a `response.completed` event) as a result."""
    status = obj.get("status")
    if status == "failed" or obj.get("error"):
        raise _failed(obj, request_id, streaming)
    texts: list[str] = []
    tool = False
    for item in each_dict(obj.get("output")):
        if item.get("type") == "message":
            content = item.get("content")
            for c in [content] if isinstance(content, str) else as_list(content):
                if isinstance(c, str):   # liberal: text as a bare string, not a part
                    texts.append(c)
                elif isinstance(c, dict) and c.get("type") in ("output_text", "text"):
                    texts.append(text_of(c.get("text")))
            texts.extend(str(c.get("refusal") or "") for c in each_dict(item.get("content"))
                         if c.get("type") == "refusal")
        elif item.get("type") == "function_call":
            tool = True
    if not texts and isinstance(obj.get("output_text"), str):   # SDK-style convenience
        texts.append(obj["output_text"])
    u = as_dict(obj.get("usage"))
    return ChatResult(content="".join(texts), finish_reason=finish_reason(obj, tool),
                      usage=usage(u.get("input_tokens"), u.get("output_tokens"),
                                  u.get("total_tokens")) if u else None,
                      id=obj.get("id"), model=obj.get("model"), raw=obj, request_id=request_id)


def finish_reason(obj: Mapping[str, Any], tool: bool = False) -> str:
    """`completed` -> stop (tool_calls with a function call); `incomplete` by its reason."""
    if obj.get("status") == "incomplete":
        reason = as_dict(obj.get("incomplete_details")).get("reason")
        return _INCOMPLETE.get(str(reason), "length")
    return "tool_calls" if tool else "stop"


def _error_event(obj: dict[str, Any], request_id: Optional[str]) -> APIError:
    """An `error` event (`{"type": "error", "code", "message"}`), or a chat-style
    `{"error": {...}}` from a compatible server, as the error it names."""
    if isinstance(obj.get("error"), str) and obj["error"]:   # `"error": "text"`: the message
        return stream_error({"error": obj["error"]}, request_id)
    err = obj["error"] if isinstance(obj.get("error"), dict) else obj
    kind = err.get("type") if err.get("type") != "error" else err.get("code")
    return stream_error({"error": {"type": kind, "code": err.get("code"),
                                   "message": err.get("message")}}, request_id)


def _failed(obj: Mapping[str, Any], request_id: Optional[str], streaming: bool) -> APIError:
    """`status: failed` with ``error: {code, message}`` as an error."""
    err = as_dict(obj.get("error"))
    code = str(err.get("code") or "server_error")
    return stream_error({"error": {"type": code, "code": code,
                                   "message": err.get("message") or "the response failed"}},
                        request_id, streaming=streaming)


class ResponsesStream(StreamFold):
    """Folds `response.*` events; `response.completed` (or failed/incomplete) ends it."""

    __slots__ = ()

    def apply(self, data: str, event: Optional[str] = None) -> Optional[str]:
        """One event; returns the text of an `output_text.delta`."""
        if data == "[DONE]":   # some compatible servers end like chat completions
            self.done = self.done or self.finish_reason is not None
            return None
        obj = load_event(data, self.request_id)
        if not isinstance(obj, dict):
            return None
        kind = obj.get("type") or event
        if kind == "response.output_text.delta":
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                self.parts.append(delta)
                return delta
            return None
        if kind in ("response.created", "response.in_progress"):
            self._meta(as_dict(obj.get("response")))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            return self._finish(as_dict(obj.get("response")))
        elif kind == "error" or (kind is None and obj.get("error")):
            raise _error_event(obj, self.request_id)
        return None

    def _meta(self, response: dict[str, Any]) -> None:
        self.id = self.id or response.get("id")
        self.model = self.model or response.get("model")

    def _finish(self, response: dict[str, Any]) -> Optional[str]:
        """Ends the stream; returns the whole text when the server sent it only here (no
        deltas), so it is shown like a delta, not kept silently in the result."""
        self._meta(response)
        result = result_of(response, self.request_id, streaming=True)   # raises for `failed`
        self.finish_reason, self.usage, self.raw = result.finish_reason, result.usage, response
        self.done = True
        if not self.parts and result.content:   # a server that sent no deltas
            self.parts.append(result.content)
            return result.content
        return None


class OpenAIResponses:
    """The Responses API dialect."""

    name = "openai-responses"

    def build_request(self, body: Mapping[str, Any], *, stream: bool) -> HTTPRequest:
        """``instructions`` from the system messages, ``input`` from the turns."""
        system, turns = split_system(body.get("messages"))
        out: dict[str, Any] = {"model": body.get("model"), "input": input_items(turns)}
        if system is not None:
            out["instructions"] = system
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = body[name]
        if max_tokens(body) is not None:
            out["max_output_tokens"] = max_tokens(body)
        if body.get("stop") is not None:
            out["stop"] = body["stop"]   # not a Responses field: the server says so
        more = extras(body)
        fmt = text_format(body)
        if fmt is not None:   # merged with a `text` from --param (verbosity, ...)
            more["text"] = {**as_dict(more.get("text")), "format": fmt}
        out.update(more)
        if stream:
            out["stream"] = True
        return HTTPRequest("POST", "/responses", out)

    def parse_response(self, body: bytes, status: int, headers: Mapping[str, str]) -> ChatResult:
        """A Response object."""
        obj = load_object(body, status, headers)
        if not isinstance(obj.get("output"), list) and "output_text" not in obj:
            raise InvalidResponseError("the response has no output", status=status,
                                       request_id=request_id_of(headers), body=obj)
        return result_of(obj, request_id_of(headers))

    def stream_state(self, request_id: Optional[str] = None) -> ResponsesStream:
        """A fresh folder for `response.*` events."""
        return ResponsesStream(request_id)

    def models_request(self) -> HTTPRequest:
        """`GET /models`, as with Chat Completions."""
        return HTTPRequest("GET", "/models")

    def parse_models(self, body: bytes, status: int,
                     headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """OpenAI's `data` list."""
        obj = load_json(body, status, request_id_of(headers))
        return model_list(obj.get("data") if isinstance(obj, dict) else obj, "id", status)


DIALECT = OpenAIResponses()
