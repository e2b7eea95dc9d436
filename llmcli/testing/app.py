"""The OpenAI-compatible application: routing, auth, models, chat and control API.

``App.handle`` is called by the protocol for every request and returns a plan
(see ``plans``).  It runs on the server's event loop thread only, so its state
needs no locks.
"""

from __future__ import annotations

import json
import math
from time import monotonic
from typing import Any
from urllib.parse import parse_qs

from .batches import BatchService, app_handler
from .chat import fault_plan, success_plan
from .config import MODEL_CREATED, MODEL_OWNER, ServerConfig
from .content import DirectiveError, answer_for
from .dialects import native_api
from .faults import FaultBook, FaultError, error_body, fault_from_json, parse_fault
from .plans import (Delayed, Drop, Hang, Plan, Reply, Request, Stream, Truncated,
                    sse_event)
from .parts import check_parts
from .stats import Stats, mask_secret
from .structured import check_response_format, structured_answer
from .validation import RequestError, check_chat

CHAT_PATH = "/v1/chat/completions"
AZURE_PREFIX = "/openai/deployments/"
AZURE_SUFFIX = "/chat/completions"
RATE_LIMIT_REQUESTS = 10_000
RATE_LIMIT_TOKENS = 10_000_000
RATE_WINDOW = 60.0
_decode_json = json.JSONDecoder().decode
_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an "
           "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


def error_reply(exc: RequestError, headers: bytes = b"") -> Reply:
    """Turn a refusal into its OpenAI-shaped response."""
    return Reply(exc.status, error_body(exc.message, exc.type, exc.param, exc.code),
                 headers=headers)


def _json_reply(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode())


def _outcome(plan: Plan) -> str:
    """The status a plan answers with, for statistics."""
    while isinstance(plan, (Delayed, Truncated)):
        plan = plan.plan if isinstance(plan, Delayed) else plan.reply
    if isinstance(plan, (Hang, Drop)):
        return type(plan).__name__.lower()
    return "200" if isinstance(plan, Stream) else str(plan.status)


class App:
    """Answers requests according to a ``ServerConfig``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.faults = FaultBook()
        secrets = ["authorization", "x-api-key", "x-goog-api-key"] + (
            [config.auth_header] if config.auth_header else [])
        self.stats = Stats(secrets)
        self._models = frozenset(config.models)
        self._model_list = json.dumps({"object": "list", "data": [
            self._model_object(m) for m in config.models]}).encode()
        self._auth_header = (config.auth_header or "authorization").lower()
        self._window = (0.0, 0, 0)  # start, requests, tokens of the rate-limit window
        self.batches = BatchService(app_handler(self))   # /v1/files, /v1/batches

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": MODEL_OWNER}

    # -- entry point ---------------------------------------------------------
    def handle(self, request: Request) -> Plan:
        """Route one request to its handler and record it."""
        if request.path.startswith("/_control/"):
            return self._control(request)  # control calls do not count as traffic
        native = native_api(request)   # Responses, Anthropic, Gemini: testing/dialects
        try:
            if native is not None:
                plan, tokens = native.handle(self, request)
            else:
                self._check_access(request)
                plan, tokens = self._route(request)
        except RequestError as exc:
            plan, tokens = error_reply(exc), 0
        if self.config.ratelimit_headers:
            _add_headers(plan, self._ratelimit_headers(tokens))
        if self.config.latency_ms and not isinstance(plan, Delayed):
            plan = Delayed(self.config.latency_ms / 1000, plan)
        if self.config.echo_key:
            key = self._presented_key(request) if native is None else native.presented_key(request)
            _echo_key(plan, key)
        self.stats.record(request, _outcome(plan))
        return plan

    def _route(self, request: Request) -> tuple[Plan, int]:
        """Dispatch on method and path; returns the plan and tokens it used."""
        path, method = request.path, request.method
        azure = path.startswith(AZURE_PREFIX) and path.endswith(AZURE_SUFFIX)
        if path == CHAT_PATH or azure:
            if method != "POST":
                raise RequestError(405, f"Invalid method for URL ({method} {path}).")
            deployment = path[len(AZURE_PREFIX):-len(AZURE_SUFFIX)] if azure else None
            return self._chat(request, deployment)
        batch_reply = self.batches.route(method, path, request.query, request.headers,
                                         request.body)
        if batch_reply is not None:
            return batch_reply, 0
        if path == "/v1/models" or path.startswith("/v1/models/"):
            if method != "GET":
                raise RequestError(405, f"Invalid method for URL ({method} {path}).")
            return self._models_reply(path[len("/v1/models/"):]), 0
        raise RequestError(404, f"Invalid URL ({method} {path})")

    # -- access --------------------------------------------------------------
    def _presented_key(self, request: Request) -> str:
        """The raw key the client sent, or ``""``."""
        value = request.headers.get(self._auth_header, "")
        if self.config.auth_header is None:
            scheme, _, value = value.partition(" ")
            value = value.strip() if scheme.lower() == "bearer" else ""
        return value

    def _check_access(self, request: Request) -> None:
        """Enforce the API key and the required query parameters."""
        value = self._presented_key(request)
        if not value:
            raise RequestError(401, _NO_KEY)
        if self.config.api_key is not None and value != self.config.api_key:
            shown = value if self.config.echo_key else mask_secret(value)
            raise RequestError(401, f"Incorrect API key provided: {shown}. You "
                                    "can find your API key at "
                                    "https://platform.openai.com/account/api-keys.",
                               None, "invalid_api_key")
        if self.config.required_query:
            self._check_query(request.query)

    def _check_query(self, query: str) -> None:
        """Missing parameters answer 404 (like Azure), wrong values 400."""
        given = parse_qs(query, keep_blank_values=True)
        for name, expected in self.config.required_query.items():
            values = given.get(name)
            if not values:
                raise RequestError(404, f"Resource not found: missing query parameter '{name}'.",
                                   name, "missing_required_parameter")
            if values[-1] != expected:
                raise RequestError(400, f"Unsupported {name}: {values[-1]!r}; this server "
                                        f"requires {expected!r}.", name, "invalid_value")

    # -- endpoints -----------------------------------------------------------
    def _models_reply(self, model: str) -> Reply:
        """The model list, or one model, or 404."""
        if not model:
            return Reply(200, self._model_list)
        if model not in self._models:
            raise RequestError(404, f"The model '{model}' does not exist", "model",
                               "model_not_found")
        return _json_reply(self._model_object(model))

    def _chat(self, request: Request, deployment: str | None) -> tuple[Plan, int]:
        """Validate a chat completion, apply faults and directives, answer."""
        try:
            # Decoding first skips json.loads' encoding sniffing; JSON bodies are UTF-8.
            payload = _decode_json(request.body.decode())
        except ValueError:
            raise RequestError(400, "We could not parse the JSON body of your request. (HINT: "
                                    "This likely means you aren't using your HTTP library "
                                    "correctly.)") from None
        model, messages, max_tokens, stream, usage = check_chat(payload, self._models, deployment)
        check_parts(messages)
        schema = check_response_format(payload)
        try:
            answer = structured_answer(messages, schema, answer_for(messages, max_tokens))
            directives = answer.directives
            fault = self.faults.take_queued()
            if fault is None and directives.fault is not None:
                fault = parse_fault(directives.fault)
                fault = fault if self.faults.fires(fault, request.body) else None
        except (DirectiveError, FaultError) as exc:
            raise RequestError(400, f"Invalid test directive: {exc}", "messages") from None
        ms = directives.interval_ms if directives.interval_ms is not None \
            else self.config.stream_interval_ms
        if fault is None:
            plan = success_plan(model, answer, stream, usage, ms / 1000)
        else:
            plan = fault_plan(fault, model, answer, stream, usage, ms / 1000)
        if directives.latency_ms is not None:
            plan = Delayed(directives.latency_ms / 1000, plan)
        return plan, answer.prompt_tokens + answer.completion_tokens

    def _ratelimit_headers(self, tokens: int) -> bytes:
        """OpenAI's x-ratelimit-* headers over a one-minute window."""
        now = monotonic()
        start, requests, used = self._window
        if now - start >= RATE_WINDOW:
            start, requests, used = now, 0, 0
        requests, used = requests + 1, used + tokens
        self._window = (start, requests, used)
        reset = f"{max(1, math.ceil(start + RATE_WINDOW - now))}s"
        return (
            f"x-ratelimit-limit-requests: {RATE_LIMIT_REQUESTS}\r\n"
            f"x-ratelimit-remaining-requests: {max(0, RATE_LIMIT_REQUESTS - requests)}\r\n"
            f"x-ratelimit-reset-requests: {reset}\r\n"
            f"x-ratelimit-limit-tokens: {RATE_LIMIT_TOKENS}\r\n"
            f"x-ratelimit-remaining-tokens: {max(0, RATE_LIMIT_TOKENS - used)}\r\n"
            f"x-ratelimit-reset-tokens: {reset}\r\n"
        ).encode()

    # -- control API -----------------------------------------------------------
    def _control(self, request: Request) -> Plan:
        """``/_control/stats``, ``/_control/reset``, ``/_control/faults``, ``/_control/health``."""
        route = (request.method, request.path[len("/_control/"):])
        if route == ("GET", "stats"):
            return _json_reply(dict(self.stats.snapshot(), queued_faults=self.faults.queued))
        if route == ("GET", "health"):
            return _json_reply({"ok": True})
        if route == ("POST", "reset"):
            self.stats.reset()
            self.faults.reset()
            return _json_reply({"ok": True})
        if route == ("POST", "faults"):
            try:
                self.queue_faults(json.loads(request.body or b"null"))
            except (ValueError, FaultError) as exc:
                return error_reply(RequestError(400, f"Invalid faults: {exc}", "faults"))
            return _json_reply({"ok": True, "queued_faults": self.faults.queued})
        if route == ("POST", "batches"):
            try:
                return _json_reply(self.batches.control(json.loads(request.body or b"null")))
            except ValueError as exc:
                return error_reply(RequestError(400, f"Invalid batch knobs: {exc}", "knobs"))
        return error_reply(RequestError(404, f"Invalid URL ({request.method} {request.path})"))

    def queue_faults(self, data: Any) -> None:
        """Queue ``{"faults": [...]}`` (or a bare list) for the next chat requests."""
        entries = data.get("faults") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise FaultError("expected {\"faults\": [...]}")
        self.faults.enqueue([fault_from_json(entry) for entry in entries])


def _echo_key(plan: Plan, key: str) -> None:
    """``echo_key``: put the raw ``key`` where careless servers put it: x-request-id,
    every JSON error body (message and ``param``) and an in-stream error."""
    if not key:
        return
    inner = plan
    while isinstance(inner, (Delayed, Truncated)):
        inner = inner.plan if isinstance(inner, Delayed) else inner.reply
    if isinstance(inner, Reply) and inner.status >= 400:
        inner.body = _error_with_key(inner.body, key)
    elif isinstance(inner, Stream) and isinstance(inner.events, list):
        inner.events = [sse_event(_error_with_key(e[len(b"data: "):].rstrip(), key))
                        if e.startswith(b'data: {"error"') else e for e in inner.events]
    _add_headers(plan, b"x-request-id: %s\r\n" % key.encode("latin-1", "replace"))


def _error_with_key(body: bytes, key: str) -> bytes:
    """An OpenAI-shaped error body with ``key`` in its message and ``param``; any
    other body as it was."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return body
    message = str(error.get("message") or "")
    error["message"] = message if key in message else f"{message} (key: {key})"
    error["param"] = key
    return json.dumps(data).encode()


def _add_headers(plan: Plan, headers: bytes) -> None:
    """Append header lines to whatever response a plan will send."""
    while isinstance(plan, (Delayed, Truncated)):
        plan = plan.plan if isinstance(plan, Delayed) else plan.reply
    if isinstance(plan, (Reply, Stream)):
        plan.headers += headers
