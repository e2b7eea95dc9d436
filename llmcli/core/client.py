"""The sync client on httpx: models, chat, and streaming chat, with retries."""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

# First: ._httpx imports httpx without httpx's own CLI tool (rich, pygments: 40-50 ms).
from ._httpx import default_tls_context  # isort: skip

import httpx

from .chat import ChatResult, check_status, parse_chat, redact_error, request_id_of
from .dialects import HTTPRequest, get_dialect
from .errors import APIConnectionError, APIError, APITimeoutError, ConfigError, InvalidResponseError
from .options import ClientOptions, StreamMask, log, mask_url, redact
from .retry import Attempts, Deadline
from .sse import SSEDecoder

if TYPE_CHECKING:
    from .dialects.protocol import StreamFolder


@contextlib.contextmanager
def map_httpx_errors(options: ClientOptions, deadline: Optional[Deadline] = None) -> Iterator[None]:
    """Translate httpx's exceptions into ours, most specific first."""
    try:
        yield
    except httpx.TimeoutException as exc:
        if deadline is not None:
            deadline.check()   # the budget ran out: say so rather than "read timeout"
        _raise_if_diagnosed(exc, options, timed_out=isinstance(exc, httpx.ConnectTimeout))
        kind = type(exc).__name__.replace("Timeout", " timeout").lower().strip()
        raise APITimeoutError(f"{kind} talking to {options.shown_url()}") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ConfigError(f"bad base_url {options.shown_url()}: {_safe(exc, options)}") from exc
    except httpx.TransportError as exc:
        if _cert_failure(exc):
            raise tls_error(options, _safe(exc, options)) from exc
        _raise_if_diagnosed(exc, options)
        raise APIConnectionError(f"connection to {options.shown_url()} failed: "
                                 f"{_safe(exc, options) or type(exc).__name__}") from exc


def _raise_if_diagnosed(exc: Exception, options: ClientOptions, timed_out: bool = False) -> None:
    """Raise the clear, non-retried error for a failure retrying cannot fix
    (core/diagnose.py): nothing listening locally, http/https mixed up."""
    from .diagnose import diagnose

    found = diagnose(exc, options.base_url, options.shown_url(), timed_out=timed_out)
    if found is not None:
        raise found from exc


def _cert_failure(exc: BaseException) -> bool:
    """Whether a transport error is a failed certificate check (ssl's own error is
    somewhere in the chain; its class name is enough, ssl need not be imported)."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        if type(seen).__name__ == "SSLCertVerificationError" or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def tls_error(options: ClientOptions, detail: str) -> APIConnectionError:
    """A failed certificate check: retrying cannot help, and the fix is a setting."""
    from .errors import UnreachableError

    return UnreachableError(
        f"TLS certificate of {options.shown_url()} could not be verified ({detail}); "
        "if a corporate proxy re-signs TLS, set ca_bundle or system_trust (llmcli docs config)")



def _safe(exc: BaseException, options: ClientOptions) -> str:
    return redact(str(exc), options.secrets())


def http_timeout(options: ClientOptions, deadline: Deadline) -> httpx.Timeout:
    """Per-attempt timeouts, shortened to what is left of the total budget."""
    read = deadline.cap(options.read_timeout)
    return httpx.Timeout(connect=deadline.cap(options.connect_timeout), read=read,
                         write=read, pool=read)


def tls_verify(options: ClientOptions) -> Any:
    """:func:`verify_setting`, with the default (verify against certifi's CAs) as a
    context that loads them just before the first handshake: 2 ms per client instead of
    80-130 ms, which a command that fails before connecting never pays. Both clients
    and both async transports use it."""
    verify = verify_setting(options)
    return default_tls_context() if verify is True else verify


def verify_setting(options: ClientOptions) -> Any:
    """httpx's ``verify``: a bool, a CA bundle path, or the OS trust store."""
    if options.system_trust:
        try:
            import ssl

            import truststore
        except ImportError as exc:
            raise ConfigError("system_trust needs the `truststore` package "
                              "(pip install truststore)") from exc
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if isinstance(options.verify, str):
        import ssl

        try:
            return ssl.create_default_context(cafile=options.verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA bundle {options.verify}: {exc}") from exc
    return options.verify


class Client:
    """A sync API client with one connection pool. Use as a context manager."""

    def __init__(self, options: ClientOptions, *, transport: Optional[httpx.BaseTransport] = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self._sleep, self.clock = sleep, clock
        verify = tls_verify(options)
        from .diagnose import watch_handshakes

        verify = watch_handshakes(verify)    # https:// to a plain-HTTP server: named in <1s
        options.validate()
        self.dialect = get_dialect(options.api)
        # No redirects: httpx strips only Authorization on a cross-origin hop, and the
        # key may ride in api-key or another header (check_status explains a 3xx).
        self._http = httpx.Client(transport=transport, verify=verify, proxy=options.proxy,
                                  params=options.query_params() or None, follow_redirects=False)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def list_models(self) -> list[dict[str, Any]]:
        """The model objects the server offers (`GET /models` or the dialect's own)."""
        (response, body), _ = self._send(self.dialect.models_request(),
                                         self.deadline())
        return self.dialect.parse_models(body, response.status_code, response.headers)

    def chat(self, body: dict[str, Any]) -> ChatResult:
        """One reply to a canonical chat ``body``, in the client's dialect, retried as
        the policy says."""
        (response, content), attempts = self._send(self.dialect.build_request(body, stream=False),
                                                   self.deadline())
        result = parse_chat(content, response.status_code, response.headers,
                            self.options.secrets(), self.dialect)
        result.attempts = attempts
        return result

    def stream_chat(self, body: dict[str, Any]) -> "ChatStream":
        """A streaming chat completion: iterate the result for content deltas."""
        return ChatStream(self, body)

    def _send(self, req: HTTPRequest,
              deadline: Deadline) -> tuple[tuple[httpx.Response, bytes], int]:
        content = None if req.body is None else json.dumps(req.body).encode()
        attempts = Attempts(self.options.retry, deadline)
        while True:
            try:
                return self.attempt(req, content, deadline, False), attempts.number
            except APIError as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise
            self.sleep(delay)

    def deadline(self) -> Deadline:
        """A fresh ``--max-time`` budget for one call, on the client's clock."""
        return Deadline(self.options.max_time, self.clock)

    def sleep(self, seconds: float) -> None:
        """Wait between attempts, through the ``sleep`` the client was given (not at
        all for a ``Retry-After: 0``)."""
        if seconds > 0:
            self._sleep(seconds)

    def attempt(self, req: HTTPRequest, content: Optional[bytes], deadline: Deadline,
                stream: bool) -> tuple[httpx.Response, bytes]:
        """One request, no retry (:class:`ChatStream` runs its own loop around it). The body is read here, the total budget checked per network
        read (a server that trickles a byte at a time cannot outlast --max-time),
        except for a stream that succeeded: that is the caller's to read."""
        method, url = req.method, self.options.url(req.path)
        started = time.perf_counter()
        with map_httpx_errors(self.options, deadline):
            request = self._http.build_request(
                method, url, content=content, timeout=http_timeout(self.options, deadline),
                params=req.query or None,
                headers=req.headers | self.options.request_headers(stream=stream) | (
                    {"content-type": "application/json"} if content is not None else {}))
            response = self._http.send(request, stream=True)
            body = b""
            if not stream or response.status_code >= 300:
                body = _read_body(response, deadline)
        log.info("%s %s -> %d in %.0f ms", method, mask_url(redact(url, self.options.secrets())),
                 response.status_code, (time.perf_counter() - started) * 1000)
        check_status(response.status_code, response.headers, body, self.options.secrets())
        return response, body


def _read_body(response: httpx.Response, deadline: Deadline) -> bytes:
    """The whole body, checking the total budget after every network read."""
    parts = []
    try:
        for chunk in response.iter_bytes():
            parts.append(chunk)
            deadline.check()
    finally:
        response.close()
    return b"".join(parts)


class ChatStream:
    """A streaming reply. Iterate it for content deltas; afterwards ``finish_reason``,
    ``usage``, ``id`` and ``model`` are set. A stream is retried only while no byte of
    it has arrived; the response is always closed."""

    def __init__(self, client: Client, body: dict[str, Any]) -> None:
        self._client, self._body = client, body
        self.state: StreamFolder = client.dialect.stream_state()
        self.attempts = 0
        # A key a model echoes arrives in pieces: deltas are masked as a sequence.
        self._mask = StreamMask(client.options.secrets())

    def __getattr__(self, name: str) -> Any:
        if name in ("id", "model", "finish_reason", "usage", "request_id"):
            return getattr(self.state, name)
        raise AttributeError(name)

    def __iter__(self) -> Iterator[str]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[str]]:
        """The content deltas, grouped by network read: a writer that flushes once per
        batch shows every token as it arrives without one syscall per token."""
        client = self._client
        deadline = client.deadline()
        req = client.dialect.build_request(self._body, stream=True)
        content = json.dumps(req.body).encode()
        attempts = Attempts(client.options.retry, deadline)
        while True:
            try:
                response, _ = client.attempt(req, content, deadline, True)
                self.attempts = attempts.number
                yield from self._read(response, deadline)
                return
            except APIError as exc:   # retried only while no byte of it has arrived
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise
            client.sleep(delay)

    def result(self) -> ChatResult:
        """The whole reply so far, as a :class:`ChatResult`."""
        return self.state.result(self.attempts)

    def _read(self, response: httpx.Response, deadline: Deadline) -> Iterator[list[str]]:
        state = self.state
        state.request_id = redact(request_id_of(response.headers) or "",
                                  self._client.options.secrets()) or None
        if "json" in response.headers.get("content-type", ""):
            yield from self._read_whole(response)   # a server that ignored stream=true
            return
        decoder, received, done = SSEDecoder(), False, False
        try:
            with map_httpx_errors(self._client.options, deadline):
                try:
                    for chunk in response.iter_bytes():
                        received = True
                        deadline.check()
                        batch, done, error = self._apply(decoder.feed(chunk))
                        if batch:
                            yield batch
                        if error is not None:
                            raise error
                        if done:
                            break
                except (APITimeoutError, httpx.TimeoutException):
                    # A stream with no end event (Gemini's ends at EOF) whose finish reason
                    # came is a whole reply: a server slow to close it is not a failure.
                    if state.finish_reason is None:
                        raise
                    done = True
                if not done:
                    batch, done, error = self._apply(decoder.close())
                    if batch:
                        yield batch
                    if error is not None:
                        raise error
            tail = self._mask.flush()
            if tail:
                yield [tail]
        except APIError as exc:
            if received:   # part of the reply may be out already: a retry would repeat it
                exc.retryable = False
            raise
        finally:
            response.close()
        if self._mask:     # the reply kept (a conversation, result()) is masked as shown
            state.parts[:] = [redact("".join(state.parts), self._client.options.secrets())]
        if not done and state.finish_reason is None:
            raise InvalidResponseError("the stream ended before the reply was complete",
                                       request_id=state.request_id)

    def _read_whole(self, response: httpx.Response) -> Iterator[list[str]]:
        """A plain JSON completion where a stream was asked for: one big delta."""
        with map_httpx_errors(self._client.options):
            body = response.read()
        response.close()
        result = parse_chat(body, response.status_code, response.headers,
                            self._client.options.secrets(), self._client.dialect)
        state = self.state
        state.id, state.model, state.usage = result.id, result.model, result.usage
        state.finish_reason, state.done = result.finish_reason or "stop", True
        if result.content:
            state.parts.append(result.content)
            yield [result.content]

    def _apply(self, events: list[Any]) -> tuple[list[str], bool, Optional[APIError]]:
        """Fold decoded events into the state; return their deltas, whether the API's
        end-of-stream event was among them, and an in-stream error to raise once the
        deltas before it are written."""
        batch: list[str] = []
        state, mask = self.state, self._mask
        apply = state.apply
        for data, name, _ in events:   # unpacked: cheaper than two attribute reads
            try:
                delta = apply(data, name)
            except APIError as exc:
                return batch, False, redact_error(exc, self._client.options.secrets())
            if delta and mask:
                delta = mask.feed(delta)
            if delta:
                batch.append(delta)
            if state.done:
                return batch, True, None
        return batch, False, None
