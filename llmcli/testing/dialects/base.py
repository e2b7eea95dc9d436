"""What the native APIs of the test server share: the request flow from key check to
plan, with each API's own shapes supplied by a subclass of :class:`NativeAPI`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator, Optional
from urllib.parse import parse_qs

from ..content import Answer, DirectiveError, answer_for
from ..faults import FASTAPI_422, NGINX_502, Fault, FaultError, parse_fault
from ..plans import Delayed, Drop, Hang, Plan, Reply, Request, Stream, Truncated
from ..structured import structured_answer
from ..validation import RequestError

if TYPE_CHECKING:
    from ..app import App

# deltas sent before a dropmid or streamerror stream fails (as in chat.py)
PARTIAL_DELTAS = 2
SHORT_STREAM = 200
dumps = json.JSONEncoder(separators=(",", ":")).encode


class Call:
    """One chat request read into the server's terms."""

    __slots__ = ("model", "messages", "max_tokens", "stream")

    def __init__(self, model: str, messages: list[dict[str, Any]], max_tokens: Optional[int],
                 stream: bool) -> None:
        self.model, self.messages, self.max_tokens, self.stream = (model, messages,
                                                                   max_tokens, stream)


class NativeAPI:
    """One API's shapes. Subclasses fill in the hooks; :meth:`handle` is shared."""

    name = ""
    bad_key = "invalid API key"   # the 401 message for a wrong key

    # -- hooks ---------------------------------------------------------------------
    def matches(self, request: Request) -> bool:
        """Whether this API serves ``request``."""
        raise NotImplementedError

    def presented_key(self, request: Request) -> str:
        """The key the client sent, or ``""``."""
        raise NotImplementedError

    def error(self, status: int, message: str, headers: bytes = b"") -> Reply:
        """An error response in this API's shape."""
        raise NotImplementedError

    def route(self, app: "App", request: Request) -> tuple[Plan, int]:
        """Dispatch a request this API matched (chat or models)."""
        raise NotImplementedError

    def read_call(self, payload: dict[str, Any], request: Request) -> Call:
        """The chat request's model, canonical messages, token cap and stream flag."""
        raise NotImplementedError

    def body(self, call: Call, answer: Answer) -> bytes:
        """The JSON body of a whole reply."""
        raise NotImplementedError

    def schema(self, payload: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The JSON Schema the request asks the reply to match (see ``structured``)."""
        return None

    def events(self, call: Call, answer: Answer, partial: bool) -> Iterator[bytes]:
        """The SSE events of a streamed reply (only the first few with ``partial``)."""
        raise NotImplementedError

    def error_event(self) -> bytes:
        """The in-stream error event of a ``streamerror`` fault."""
        raise NotImplementedError

    # -- shared flow -----------------------------------------------------------------
    def handle(self, app: "App", request: Request) -> tuple[Plan, int]:
        """Check the key, then route; refusals come back in this API's shape."""
        try:
            self.check_key(app, request)
            return self.route(app, request)
        except RequestError as exc:
            return self.error(exc.status, exc.message), 0

    def check_key(self, app: "App", request: Request) -> None:
        """401 without a key or with the wrong one."""
        key = self.presented_key(request)
        if not key:
            raise RequestError(401, f"no API key: the {self.name} API wants one")
        if app.config.api_key is not None and key != app.config.api_key:
            raise RequestError(401, self.bad_key)

    def chat(self, app: "App", request: Request) -> tuple[Plan, int]:
        """A chat request: validate, apply directives and faults, answer."""
        try:
            payload = json.loads(request.body.decode() or "null")
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, "the request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise RequestError(400, "the request body must be a JSON object")
        call = self.read_call(payload, request)
        if call.model not in app.config.models:
            raise RequestError(404, f"model: {call.model} not found")
        try:
            answer = structured_answer(call.messages, self.schema(payload),
                                       answer_for(call.messages, call.max_tokens))
            fault = app.faults.take_queued()
            if fault is None and answer.directives.fault is not None:
                fault = parse_fault(answer.directives.fault)
                fault = fault if app.faults.fires(fault, request.body) else None
        except (DirectiveError, FaultError) as exc:
            raise RequestError(400, f"Invalid test directive: {exc}") from None
        ms = answer.directives.interval_ms
        interval = (app.config.stream_interval_ms if ms is None else ms) / 1000
        plan = self.plan(call, answer, fault, interval)
        if answer.directives.latency_ms is not None:
            plan = Delayed(answer.directives.latency_ms / 1000, plan)
        return plan, answer.prompt_tokens + answer.completion_tokens

    def plan(self, call: Call, answer: Answer, fault: Optional[Fault],
             interval: float) -> Plan:
        """The answer, or what a fault does instead."""
        keepalive = answer.directives.keepalive
        if fault is None:
            if not call.stream:
                return Reply(200, self.body(call, answer))
            events = self.events(call, answer, False)
            if answer.completion_tokens <= SHORT_STREAM:
                events = list(events)   # type: ignore[assignment]
            return Stream(events, interval, keepalive=keepalive)
        return self.fault_plan(call, answer, fault, interval)

    def fault_plan(self, call: Call, answer: Answer, fault: Fault, interval: float) -> Plan:
        """What the server does instead of answering, for one fault."""
        kind, headers = fault.kind, fault.retry_headers()
        if kind == "status":
            return self.error(fault.status, f"simulated {fault.status} "
                                            "(llmcli test server)", headers)
        if kind in ("hang", "drop"):
            return Hang() if kind == "hang" else Drop()
        if kind == "dropmid":
            if call.stream:
                return Stream(list(self.events(call, answer, True)), interval, abort=True,
                              headers=headers)
            return Truncated(Reply(200, self.body(call, answer), headers=headers))
        odd = {"nonjson": Reply(200, b"not json at all", headers=headers),
               "html": Reply(502, NGINX_502, b"text/html", headers),
               "plain": Reply(500, b"Internal Server Error", b"text/plain; charset=utf-8",
                              headers),
               "detail": Reply(422, FASTAPI_422, headers=headers)}
        if kind in odd:
            return odd[kind]
        if not call.stream:   # streamerror without a stream: a 500
            return self.error(500, "simulated stream error (llmcli test server)", headers)
        events = [*self.events(call, answer, True), self.error_event()]
        return Stream(events, interval, headers=headers)


def query_of(request: Request) -> dict[str, str]:
    """The query string as a dict (last value wins)."""
    return {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}


def require_int(payload: dict[str, Any], name: str, required: bool = False) -> Optional[int]:
    """An optional positive integer field; 400 otherwise."""
    value = payload.get(name)
    if value is None:
        if required:
            raise RequestError(400, f"{name}: Field required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(400, f"{name}: must be a positive integer")
    return value


def json_reply(data: Any, status: int = 200, headers: bytes = b"") -> Reply:
    """A JSON response."""
    return Reply(status, dumps(data).encode(), headers=headers)


def named_event(name: str, data: dict[str, Any]) -> bytes:
    """An SSE event with an ``event:`` line (Anthropic's and Responses' framing)."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(data).encode() + b"\n\n"
