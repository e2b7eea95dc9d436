"""Google Gemini API (`POST /models/{model}:generateContent`, and
`:streamGenerateContent?alt=sse`): ``contents`` of ``parts``, ``systemInstruction``,
``generationConfig``; candidates and ``usageMetadata`` back. Field names are sent in
the proto JSON camelCase the API documents (it accepts snake_case too)."""

from __future__ import annotations

from typing import Any, Mapping, Optional
from urllib.parse import quote

from ..chat import ChatResult, StreamFold, load_json, request_id_of, stream_error, text_of
from ..errors import InvalidResponseError
from . import HTTPRequest
from ._common import (as_dict, count, data_url, each_dict, extras, file_part, finish, image_url,
                      json_schema, load_event, load_object, max_tokens, model_list, parts_of,
                      split_system, stop_list, usage)

FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
          "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
          "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
          "IMAGE_SAFETY": "content_filter", "MALFORMED_FUNCTION_CALL": "tool_calls"}
# canonical param -> generationConfig field
CONFIG = (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
          ("seed", "seed"), ("presence_penalty", "presencePenalty"),
          ("frequency_penalty", "frequencyPenalty"), ("n", "candidateCount"))
_CONFIG_NAMES = frozenset(name for name, _ in CONFIG)


def contents(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical turns as Gemini contents: the assistant is the `model`."""
    return [{"role": "model" if m.get("role") == "assistant" else "user",
             "parts": [_part(p) for p in parts_of(m.get("content"))] or [{"text": ""}]}
            for m in turns]


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text") or "")}
    if kind == "image_url":
        return _media(image_url(part), "image/*")
    if kind == "file":
        f = file_part(part)
        return _media(str(f.get("file_data") or f.get("file_id") or ""),
                      "application/octet-stream")
    return {k: v for k, v in part.items() if k != "type"} if kind is None else part


def _media(url: str, fallback_mime: str) -> dict[str, Any]:
    """A data URL inline, any other URL (https, gs://, a Files API uri) by reference."""
    parsed = data_url(url)
    if parsed is not None:
        return {"inlineData": {"mimeType": parsed[0], "data": parsed[1]}}
    return {"fileData": {"mimeType": _guess_mime(url) or fallback_mime, "fileUri": url}}


def _guess_mime(url: str) -> Optional[str]:
    import mimetypes

    return mimetypes.guess_type(url.split("?", 1)[0])[0]


def generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    """Sampling params, the token cap, stop and response_format as generationConfig;
    a ``generationConfig`` given with --param is merged on top."""
    config = {native: body[name] for name, native in CONFIG if body.get(name) is not None}
    if max_tokens(body) is not None:
        config["maxOutputTokens"] = max_tokens(body)
    if stop_list(body):
        config["stopSequences"] = stop_list(body)
    schema = json_schema(body)
    rf = as_dict(body.get("response_format"))
    if schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = schema.get("schema") or {}
    elif rf.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    config.update(as_dict(body.get("generationConfig")))
    return config


def result_of(obj: dict[str, Any], request_id: Optional[str], status: int = 200) -> ChatResult:
    """A GenerateContentResponse as a result; a blocked prompt (no candidates, a
    promptFeedback.blockReason) is an empty reply cut by the content filter."""
    candidates = obj.get("candidates")
    if candidates is None and not obj.get("promptFeedback"):
        raise InvalidResponseError("the response has no candidates", status=status,
                                   request_id=request_id, body=obj)
    text, reason = candidate_text(obj)
    if reason is None and as_dict(obj.get("promptFeedback")).get("blockReason"):
        reason = "content_filter"
    meta = obj.get("usageMetadata") or obj.get("usage_metadata")
    return ChatResult(content=text, finish_reason=reason, usage=usage_of(meta),
                      id=obj.get("responseId"), model=obj.get("modelVersion"), raw=obj,
                      request_id=request_id)


def candidate_text(obj: Mapping[str, Any]) -> tuple[str, Optional[str]]:
    """The first candidate's text (thought parts left out) and its finish reason."""
    first = next(each_dict(obj.get("candidates")), {})
    texts, tool = [], False
    content = first.get("content")
    parts = content.get("parts") if isinstance(content, dict) else content
    if not isinstance(parts, list):   # liberal: the text as a bare string
        parts = [parts] if isinstance(parts, str) else []
    for part in parts:
        if isinstance(part, str):     # liberal: a part as a bare string
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        if "functionCall" in part or "function_call" in part:
            tool = True
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif isinstance(part.get("text"), list) and not part.get("thought"):
            texts.append(text_of(part["text"]))     # liberal: a list where text was documented
    raw = first.get("finishReason") or first.get("finish_reason")
    # this runs per chunk: the call only on the chunk that carries a reason
    reason = None if raw is None else finish(FINISH, raw)
    if tool and reason == "stop":
        reason = "tool_calls"
    return "".join(texts), reason


def usage_of(raw: Any) -> Optional[dict[str, int]]:
    """Thinking tokens count as completion tokens, as OpenAI's reasoning tokens do."""
    u = as_dict(raw)
    if not u:
        return None
    completion = count(u.get("candidatesTokenCount")) + count(u.get("thoughtsTokenCount"))
    return usage(u.get("promptTokenCount"), completion, u.get("totalTokenCount"))


class GeminiStream(StreamFold):
    """Folds streamGenerateContent chunks; the stream ends at EOF, after a chunk that
    carries the finish reason."""

    __slots__ = ()

    def apply(self, data: str, event: Optional[str] = None) -> Optional[str]:
        """One chunk; returns its text."""
        obj = load_event(data, self.request_id)
        if not isinstance(obj, dict):
            return None
        if obj.get("error"):
            raise stream_error(obj, self.request_id)
        self.id = self.id or obj.get("responseId")
        self.model = self.model or obj.get("modelVersion")
        meta = obj.get("usageMetadata") or obj.get("usage_metadata")
        if meta:
            self.usage = usage_of(meta)
        text, reason = candidate_text(obj)
        if reason is not None:
            self.finish_reason = reason
        elif as_dict(obj.get("promptFeedback")).get("blockReason"):
            self.finish_reason = "content_filter"
        if text:
            self.parts.append(text)
            return text
        return None


class Gemini:
    """The Gemini API dialect."""

    name = "gemini"

    def build_request(self, body: Mapping[str, Any], *, stream: bool) -> HTTPRequest:
        """The model goes in the path; the turns in ``contents``."""
        system, turns = split_system(body.get("messages"))
        out: dict[str, Any] = {"contents": contents(turns)}
        if system is not None:
            out["systemInstruction"] = {"parts": [{"text": system}]}
        config = generation_config(body)
        if config:
            out["generationConfig"] = config
        out.update({k: v for k, v in extras(body).items()
                    if k not in _CONFIG_NAMES and k != "generationConfig"})
        path = f"/{model_path(body.get('model'))}:"
        if stream:
            return HTTPRequest("POST", path + "streamGenerateContent", out, query={"alt": "sse"})
        return HTTPRequest("POST", path + "generateContent", out)

    def parse_response(self, body: bytes, status: int, headers: Mapping[str, str]) -> ChatResult:
        """A GenerateContentResponse; `{"error": ...}` with a 2xx is raised."""
        return result_of(load_object(body, status, headers), request_id_of(headers), status)

    def stream_state(self, request_id: Optional[str] = None) -> GeminiStream:
        """A fresh folder for streamGenerateContent chunks."""
        return GeminiStream(request_id)

    def models_request(self) -> HTTPRequest:
        """`GET /models`, one page of up to 1000."""
        return HTTPRequest("GET", "/models", query={"pageSize": "1000"})

    def parse_models(self, body: bytes, status: int,
                     headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """The `models` list, ids without the `models/` prefix."""
        obj = load_json(body, status, request_id_of(headers))
        items = obj.get("models", []) if isinstance(obj, dict) else obj
        return model_list(items, "name", status, strip="models/")


def model_path(model: Any) -> str:
    """``models/NAME`` for a model id given with or without the prefix (tuned models
    `tunedModels/...` keep theirs)."""
    name = str(model or "")
    return name if "/" in name else "models/" + quote(name, safe="-._")


DIALECT = Gemini()
