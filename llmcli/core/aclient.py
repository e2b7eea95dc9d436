"""The async client, for batch: the same request building, parsing and retry policy as
the sync client, over one of two interchangeable transports.

- ``aiohttp`` (default): ~10x the throughput of httpx 0.28 at concurrency 64 on two
  cores, because httpcore's pool does work proportional to its size on every request
  (encode/httpcore#1035). See docs/performance.md for the figures.
- ``httpx``: kept for respx-based unit tests and as a fallback.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable, Mapping, NamedTuple, Optional, Protocol

from .chat import ChatResult, check_status, parse_chat
from .dialects import HTTPRequest, get_dialect
from .errors import APIConnectionError, APIError, APITimeoutError, ConfigError
from .options import ClientOptions, log, mask_url, redact
from .retry import Attempts, Deadline


class RawResponse(NamedTuple):
    """What a transport returns: status, case-insensitive headers, whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class AsyncTransport(Protocol):
    """What the async client needs from an HTTP library: one request with its
    timeouts, whole body read, errors mapped to the core's; and closing the pool.
    ``total`` bounds the request as a whole (what is left of --max-time); ``query``
    adds to the options' query parameters. Implemented over aiohttp and httpx below."""

    async def request(self, method: str, url: str, headers: dict[str, str],
                      content: Optional[bytes], connect: Optional[float],
                      read: Optional[float], total: Optional[float] = None,
                      query: Optional[dict[str, str]] = None) -> RawResponse:
        """Send one request; raise :class:`APIConnectionError` (or a subclass) when no
        usable answer came."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


class AsyncClient:
    """An async API client with one connection pool sized for ``pool_size`` requests."""

    def __init__(self, options: ClientOptions, *, backend: str = "aiohttp",
                 pool_size: int = 64, transport: Any = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        options.validate()
        self.options = options
        self.dialect = get_dialect(options.api)
        self._sleep, self._clock = sleep, clock
        self._transport: AsyncTransport
        if backend == "aiohttp" and transport is None:
            self._transport = _AiohttpTransport(options, pool_size)
        elif backend in ("httpx", "aiohttp"):
            self._transport = _HttpxTransport(options, pool_size, transport)
        else:
            raise ConfigError(f"unknown transport backend {backend!r}")

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    async def list_models(self) -> list[dict[str, Any]]:
        """The model objects the server offers (`GET /models` or the dialect's own)."""
        response, _ = await self._send(self.dialect.models_request())
        return self.dialect.parse_models(response.body, response.status, response.headers)

    async def chat(self, body: dict[str, Any],
                   on_response: Optional[Callable[[RawResponse], None]] = None, *,
                   deadline: Optional[Deadline] = None) -> ChatResult:
        """One reply to a canonical chat ``body``, in the client's dialect, with
        retries. ``on_response`` sees every answer,
        errors included (batch reads rate-limit headers from it). ``deadline`` replaces
        the per-call ``max_time`` budget (batch runs its own retry loop around calls)."""
        response, attempts = await self._send(self.dialect.build_request(body, stream=False),
                                              on_response, deadline)
        result = parse_chat(response.body, response.status, response.headers,
                            self.options.secrets(), self.dialect)
        result.attempts = attempts
        return result

    async def _send(self, req: HTTPRequest,
                    on_response: Optional[Callable[[RawResponse], None]] = None,
                    deadline: Optional[Deadline] = None) -> tuple[RawResponse, int]:
        method = req.method
        content = None if req.body is None else json.dumps(req.body).encode()
        headers = req.headers | self.options.request_headers()
        if content is not None:
            headers["content-type"] = "application/json"
        url = self.options.url(req.path)
        deadline = deadline or Deadline(self.options.max_time, self._clock)
        attempts = Attempts(self.options.retry, deadline)
        while True:
            try:
                response = await self._attempt(method, url, headers, content, req.query,
                                               deadline)
                if on_response is not None:
                    on_response(response)
                check_status(response.status, response.headers, response.body,
                             self.options.secrets())
                return response, attempts.number
            except APIError as exc:
                delay = attempts.retry_delay(exc)
                if delay is None:
                    raise
            if delay > 0:
                await self._sleep(delay)

    async def _attempt(self, method: str, url: str, headers: dict[str, str],
                       content: Optional[bytes], query: Optional[dict[str, str]],
                       deadline: Deadline) -> RawResponse:
        """One request through the transport, timeouts capped by the budget."""
        started = time.perf_counter()
        connect = deadline.cap(self.options.connect_timeout)
        read = deadline.cap(self.options.read_timeout)
        try:
            response = await self._transport.request(method, url, headers, content,
                                                     connect, read, deadline.remaining(), query)
        except APITimeoutError:
            deadline.check()   # the budget ran out: say so rather than "timeout"
            raise
        if log.isEnabledFor(20):
            shown = mask_url(redact(url, self.options.secrets()))
            log.info("%s %s -> %d in %.0f ms", method, shown,
                     response.status, (time.perf_counter() - started) * 1000)
        return response



def _proxy_for(options: ClientOptions) -> tuple[Any, Any]:
    """The proxy (and its credentials) for ``base_url``: ``options.proxy``, else what
    the environment names (HTTPS_PROXY, NO_PROXY, ...), as aiohttp's trust_env would."""
    if options.proxy:
        return options.proxy, None
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        return get_env_proxy_for_url(URL(options.base_url))
    except (LookupError, ValueError):
        return None, None


class _AiohttpTransport:
    """aiohttp behind the core's interface; created lazily inside the running loop."""

    def __init__(self, options: ClientOptions, pool_size: int) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._options, self._pool_size = options, pool_size
        self._session: Optional[aiohttp.ClientSession] = None
        self._proxy: Optional[str] = None
        self._proxy_auth: Any = None
        self._params = options.query_params() or None
        # https:// only, until the first answer: a request still pending after
        # PROBE_AFTER gets the port probed for plain HTTP once (core/diagnose.py), as the
        # sync client's handshake does; asyncio's handshake cannot be watched itself.
        self._watch = options.base_url.startswith("https://") and not options.proxy
        self._probe: Optional[asyncio.Future[bool]] = None

    def _open(self) -> Any:
        aiohttp = self._aiohttp
        from .client import tls_verify

        verify = tls_verify(self._options)
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size,
                                         ssl=verify)
        # Not trust_env=True: it looks the proxy and ~/.netrc up in a worker thread on
        # every request (two thread hops, half the throughput at concurrency 64), and a
        # netrc entry for the API host would clash with our Authorization header. Every
        # request goes to the one base_url, so the environment's proxy is resolved once.
        self._proxy, self._proxy_auth = _proxy_for(self._options)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                              auto_decompress=True, skip_auto_headers=("User-Agent",))
        return self._session

    async def request(self, method: str, url: str, headers: dict[str, str],
                      content: Optional[bytes], connect: Optional[float],
                      read: Optional[float], total: Optional[float] = None,
                      query: Optional[dict[str, str]] = None) -> RawResponse:
        """One request; ``total`` bounds it as a whole (what is left of --max-time);
        ``query`` adds to the options' query parameters."""
        send = self._request(method, url, headers, content, connect, read, total, query)
        if not self._watch:
            return await send
        from .diagnose import PROBE_AFTER, final

        task = asyncio.ensure_future(send)
        done, _ = await asyncio.wait([task], timeout=PROBE_AFTER)
        if not done and self._watch and await self._plain_http():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise final(f"{self._options.shown_url()} speaks plain HTTP, not TLS: use http:// "
                        "in the base URL")
        response = await task
        self._watch = False     # it answered: the scheme is right
        return response

    async def _plain_http(self) -> bool:
        """Whether the base URL's port speaks plain HTTP; probed once per transport."""
        from .diagnose import host_port, speaks_plain_http

        if self._probe is None:
            address = host_port(self._options.base_url)
            self._probe = asyncio.get_running_loop().run_in_executor(
                None, lambda: address is not None and speaks_plain_http(address))
        plain = await asyncio.shield(self._probe)
        if not plain:
            self._watch = False   # a slow TLS server, not a plain one: no more probes
        return plain

    async def _request(self, method: str, url: str, headers: dict[str, str],
                       content: Optional[bytes], connect: Optional[float],
                       read: Optional[float], total: Optional[float],
                       query: Optional[dict[str, str]]) -> RawResponse:
        aiohttp = self._aiohttp
        params = {**(self._params or {}), **query} if query else self._params
        session = self._session or self._open()
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)
        try:
            # No redirects: the key would follow in whatever header carries it.
            async with session.request(method, url, data=content, headers=headers,
                                       params=params, timeout=timeout,
                                       allow_redirects=False, proxy=self._proxy,
                                       proxy_auth=self._proxy_auth) as resp:
                body = await resp.read()
                return RawResponse(resp.status, resp.headers, body)
        except asyncio.TimeoutError as exc:
            connecting = type(exc).__name__ == "ConnectionTimeoutError"
            await self._raise_if_diagnosed(exc, timed_out=connecting)
            raise APITimeoutError(f"timeout talking to {self._options.shown_url()}") from exc
        except aiohttp.InvalidURL as exc:
            raise ConfigError(f"bad base_url {self._options.shown_url()}") from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            from .client import tls_error

            raise tls_error(self._options, str(exc.certificate_error)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            await self._raise_if_diagnosed(exc)
            detail = redact(str(exc), self._options.secrets()) or type(exc).__name__
            raise APIConnectionError(f"connection to {self._options.shown_url()} failed: "
                                     f"{detail}") from exc

    async def _raise_if_diagnosed(self, exc: BaseException, timed_out: bool = False) -> None:
        """Raise the clear, non-retried error for a failure retrying cannot fix
        (core/diagnose.py); its probes block, so they run in a thread."""
        from .diagnose import diagnose

        options = self._options
        found = await asyncio.get_running_loop().run_in_executor(
            None, lambda: diagnose(exc, options.base_url, options.shown_url(),
                                   timed_out=timed_out))
        if found is not None:
            raise found from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpxTransport:
    """httpx.AsyncClient behind the core's interface."""

    def __init__(self, options: ClientOptions, pool_size: int, transport: Any) -> None:
        import httpx

        from .client import tls_verify

        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        self._options = options
        self._http = httpx.AsyncClient(transport=transport, limits=limits,
                                       verify=tls_verify(options), proxy=options.proxy,
                                       params=options.query_params() or None,
                                       follow_redirects=False)

    async def request(self, method: str, url: str, headers: dict[str, str],
                      content: Optional[bytes], connect: Optional[float],
                      read: Optional[float], total: Optional[float] = None,
                      query: Optional[dict[str, str]] = None) -> RawResponse:
        """One request; ``total`` bounds it as a whole (what is left of --max-time);
        ``query`` adds to the options' query parameters."""
        import httpx

        from .client import map_httpx_errors

        timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=read)
        try:
            with map_httpx_errors(self._options):
                resp = await asyncio.wait_for(self._http.request(
                    method, url, content=content, headers=headers, timeout=timeout,
                    params=query or None), total)
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(f"timeout talking to {self._options.shown_url()}") from exc
        return RawResponse(resp.status_code, resp.headers, resp.content)

    async def aclose(self) -> None:
        await self._http.aclose()
