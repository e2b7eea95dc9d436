"""Chat requests and responses: pure functions shared by every client and by batch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from .errors import (APIError, InvalidResponseError, RateLimitError, ServerError, shorten,
                     status_error, str_or_none)
from .options import redact, redact_json_bytes, redact_obj
from .retry import parse_retry_after

if TYPE_CHECKING:
    from .dialects.protocol import Dialect


@dataclass
class ChatResult:
    """One finished chat completion."""

    content: str
    finish_reason: Optional[str]
    usage: Optional[dict[str, Any]]
    id: Optional[str] = None
    model: Optional[str] = None
    raw: dict[str, Any] = field(default_factory=dict)
    request_id: Optional[str] = None
    attempts: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)


def with_system(messages: list[Any], system: Optional[str], *,
                 replace: bool = True) -> list[Any]:
    """``messages`` with ``system`` as the first, system message: it replaces one that
    is there already unless ``replace`` is False (then the existing one wins); ``None``
    with ``replace`` removes it. The one place a system message is put in front."""
    has = bool(messages) and isinstance(messages[0], dict) and messages[0].get("role") == "system"
    if has and not replace:
        return list(messages)
    rest = list(messages[1:] if has else messages)
    return rest if system is None else [{"role": "system", "content": system}, *rest]


# The caller decides whether a reply streams (`chat` or `stream`, batch never does); a
# `stream` field from a user's params or a batch line would make a reply arrive in a
# shape the caller does not read, so these are taken out of what users pass.
STREAM_FIELDS = ("stream", "stream_options")


def without_stream_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``fields`` less ``stream``/``stream_options``, and the names that were dropped."""
    dropped = [name for name in STREAM_FIELDS if name in fields]
    if not dropped:
        return fields, []
    return {k: v for k, v in fields.items() if k not in STREAM_FIELDS}, dropped


def build_chat_body(model: Optional[str], messages: list[dict[str, Any]],
                    params: Optional[Mapping[str, Any]] = None, *,
                    stream: bool = False) -> dict[str, Any]:
    """The JSON body of `POST /chat/completions`. ``params`` holds temperature,
    max_tokens and any extra fields; ``None`` values are left out."""
    body: dict[str, Any] = {"model": model, "messages": messages}
    if params:
        body.update((k, v) for k, v in params.items() if v is not None)
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    return body


def messages_for(prompt: Optional[str], system: Optional[str] = None,
                 history: Optional[list[dict[str, Any]]] = None) -> list[dict[str, Any]]:
    """Messages for a prompt: an optional system message first (replacing one the
    history starts with), then the history, then the prompt as a user message."""
    messages = list(history or [])
    if system is not None:
        messages = with_system(messages, system)
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
    return messages


def check_status(status: int, headers: Mapping[str, str], body: bytes,
                 secrets: Sequence[str] = ()) -> None:
    """Raise the mapped error for an error status (any non-2xx). Servers often echo
    the key back ("Incorrect API key provided: ..."): ``secrets`` are masked."""
    if 200 <= status < 300:
        return
    exc = status_error(status, body, headers.get("content-type", ""), request_id_of(headers))
    if 300 <= status < 400:
        # Redirects are not followed: the key (in whatever header) would go along.
        where = headers.get("location") or "another URL"
        exc.message = (f"HTTP {status}: the server redirects to {where}; set base_url to "
                       "the final URL (llmcli does not follow redirects, so the key never "
                       "goes anywhere else)")
    exc.retry_after = parse_retry_after(headers)
    raise redact_error(exc, secrets)


def redact_error(exc: APIError, secrets: Sequence[str]) -> APIError:
    """Mask ``secrets`` in everything of an error that a server sent: its message, the
    body kept for the record, and the request id."""
    if secrets:
        keys = list(secrets)
        exc.message = redact(exc.message, keys)
        exc.args = (exc.message,)
        exc.body = redact_obj(exc.body, keys)
        if exc.request_id:
            exc.request_id = redact(exc.request_id, keys)
    return exc


def request_id_of(headers: Mapping[str, str]) -> Optional[str]:
    """The request id a server sent: `x-request-id` (OpenAI and most), `request-id`
    (Anthropic)."""
    return headers.get("x-request-id") or headers.get("request-id")


def load_json(body: bytes, status: int, request_id: Optional[str]) -> Any:
    """Parse a success body, or raise :class:`InvalidResponseError` saying what came."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:   # RecursionError: nested too deeply
        if isinstance(exc, RecursionError):
            raise InvalidResponseError(f"the server answered {status} with JSON nested too "
                                       "deeply to read", status=status,
                                       request_id=request_id) from None
        sample = shorten(body.decode("utf-8", "replace"), 80) or "an empty body"
        raise InvalidResponseError(
            f"the server answered {status} with a body that is not JSON: {sample!r}",
            status=status, request_id=request_id) from None


def parse_chat(body: bytes, status: int, headers: Mapping[str, str],
               secrets: Sequence[str] = (), dialect: Optional["Dialect"] = None) -> ChatResult:
    """A chat reply from a 2xx response, parsed by ``dialect`` (default: Chat
    Completions). ``secrets`` are masked in the body's text before it is parsed, so
    neither the reply nor ``raw`` nor an error holds one."""
    body = redact_json_bytes(body, secrets)
    try:
        if dialect is None:
            result = parse_chat_body(body, status, headers)
        else:
            result = dialect.parse_response(body, status, headers)
    except APIError as exc:
        redact_error(exc, secrets)
        raise
    if secrets and result.request_id:   # a server may echo the key even on success
        result.request_id = redact(result.request_id, list(secrets))
    return result


def parse_chat_body(body: bytes, status: int, headers: Mapping[str, str]) -> ChatResult:
    """A `chat.completion` object as a :class:`ChatResult`."""
    request_id = request_id_of(headers)
    obj: Any = load_json(body, status, request_id)
    if isinstance(obj, dict) and obj.get("error"):
        raise stream_error(obj, request_id, streaming=False)
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise InvalidResponseError("the response has no choices", status=status,
                                   request_id=request_id, body=obj)
    choice = choices[0]
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    return ChatResult(content=text_of(message.get("content")),
                      finish_reason=choice.get("finish_reason"), usage=obj.get("usage"),
                      id=obj.get("id"), model=obj.get("model"), raw=obj,
                      request_id=request_id, headers=headers)


def parse_models(body: bytes, status: int, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """The model objects of a `GET /models` response (OpenAI's `data` list, or a bare list)."""
    obj = load_json(body, status, request_id_of(headers))
    data = obj.get("data") if isinstance(obj, dict) else obj
    if not isinstance(data, list):
        raise InvalidResponseError("the models response has no `data` list", status=status)
    return [m if isinstance(m, dict) else {"id": str(m)} for m in data]


def text_of(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content list. Liberal:
    a list of bare strings (``["x"]``, seen from servers where parts were documented)
    and a part whose ``text`` is itself such a list count as their text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else text_of(p.get("text"))
                       for p in content if isinstance(p, (str, dict)))
    return str(content)


def stream_error(obj: dict[str, Any], request_id: Optional[str] = None, *,
                 streaming: bool = True) -> APIError:
    """The error for an `{"error": ...}` object sent inside a 200 response or stream.
    Its ``type``/``code`` decide the class: only a server-side or rate-limit error is
    worth retrying; anything else (a bad request the server reported with 200) is not."""
    err = obj.get("error")
    fields = err if isinstance(err, dict) else {}
    message = str(fields.get("message") or err or "error")
    # Gemini names the kind in `status` (RESOURCE_EXHAUSTED), the others in `type`.
    kind = str_or_none(fields.get("type") or fields.get("status"))
    code = str_or_none(fields.get("code"))
    label = "error in stream" if streaming else "the server answered 200 with an error"
    text = f"{label}: {shorten(message)}"
    hint = f"{kind or ''} {code or ''}".lower()
    if "rate" in hint or "exhausted" in hint:
        cls: type[APIError] = RateLimitError
    elif not kind or any(w in hint for w in ("server", "internal", "overload", "unavailable")):
        cls = ServerError
    else:
        cls = InvalidResponseError
    return cls(text, status=200, type=kind, code=code, request_id=request_id, body=obj)


_raw_decode = json.JSONDecoder().raw_decode


def _loads_chunk(data: str) -> Any:
    """``json.loads``, a third faster on a stream chunk: it skips the wrapper and the two
    whitespace scans that json.loads adds around ``raw_decode``. Anything but a bare
    JSON value (whitespace around it, or not JSON) goes to json.loads to decide."""
    try:
        obj, end = _raw_decode(data)
    except (ValueError, RecursionError):
        end = -1
    return obj if end == len(data) else json.loads(data)


class StreamFold:
    """What every dialect's stream folder keeps (the reply's metadata, its content
    deltas, whether the API's end event came) and the :class:`ChatResult` built from
    it. Subclasses add only ``apply`` and their own slots: the hot path stays theirs."""

    __slots__ = ("id", "model", "finish_reason", "usage", "request_id", "parts", "done", "raw")

    def __init__(self, request_id: Optional[str] = None) -> None:
        self.id: Optional[str] = None
        self.model: Optional[str] = None
        self.finish_reason: Optional[str] = None
        self.usage: Optional[dict[str, Any]] = None
        self.request_id = request_id
        self.parts: list[str] = []
        self.done = False
        self.raw: dict[str, Any] = {}     # the API's final response object, where it sends one

    def result(self, attempts: int = 1) -> ChatResult:
        """The whole reply as a :class:`ChatResult`, once the stream has ended."""
        return ChatResult(content="".join(self.parts), finish_reason=self.finish_reason,
                          usage=self.usage, id=self.id, model=self.model, raw=self.raw,
                          request_id=self.request_id, attempts=attempts)


class StreamState(StreamFold):
    """Folds Chat Completions chunks into the reply's metadata; returns each content delta."""

    __slots__ = ("chunks",)

    def __init__(self, request_id: Optional[str] = None) -> None:
        super().__init__(request_id)
        self.chunks = 0

    def apply(self, data: str, event: Optional[str] = None) -> Optional[str]:
        """Take one event's data; return its content delta, if any. ``[DONE]`` ends it."""
        if data == "[DONE]":
            self.done = True
            return None
        try:
            obj = _loads_chunk(data)
        except RecursionError:
            raise InvalidResponseError("a stream event holds JSON nested too deeply to read",
                                       request_id=self.request_id) from None
        except ValueError:
            raise InvalidResponseError(f"a stream event is not JSON: {shorten(data, 80)!r}",
                                       request_id=self.request_id) from None
        if not isinstance(obj, dict):
            return None
        if obj.get("error"):
            raise stream_error(obj, self.request_id)
        self.chunks += 1
        if self.id is None:
            self.id, self.model = obj.get("id"), obj.get("model")
        if obj.get("usage"):
            self.usage = obj["usage"]
        choices = obj.get("choices")
        if not choices:
            return None
        choice = choices[0] if isinstance(choices, list) else None
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if not isinstance(choice, dict) or not isinstance(delta, (dict, type(None))) \
                or not isinstance(content, (str, type(None))):
            raise InvalidResponseError(f"a stream chunk is not a chat completion chunk: "
                                       f"{shorten(data, 80)!r}", request_id=self.request_id)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        if content:
            self.parts.append(content)
            return content
        return None
