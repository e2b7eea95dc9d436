"""Running the test server: in a background thread for tests, or on a given loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from typing import Any, Callable, TypeVar

from .app import App
from .config import ServerConfig
from .protocol import HTTPConnection

T = TypeVar("T")
START_TIMEOUT = 10.0


def ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    """A server TLS context when the config names a certificate."""
    if not config.certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config.certfile, config.keyfile)
    return context


class Listener:
    """A bound server socket and its connections, on the current event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.app = App(config)
        self.connections: set[HTTPConnection] = set()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Bind and start accepting connections."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: HTTPConnection(self.app.handle, self.connections),
            self.config.host, self.config.port, ssl=ssl_context(self.config),
            reuse_address=True, backlog=1024,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop accepting and cut every open connection (a hung one would never end)."""
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            connection.close()

    async def shutdown(self) -> None:
        """Close everything and wait for streams and delays to be cancelled."""
        self.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let aborted transports run connection_lost

    @property
    def base_url(self) -> str:
        """The ``/v1`` base URL clients should use."""
        return f"{self.config.scheme}://{self.config.host}:{self.port}/v1"


class MockOpenAIServer:
    """An OpenAI-compatible server on its own event loop in a daemon thread.

    >>> with MockOpenAIServer(api_key="sk-test") as server:
    ...     client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")

    Options are the fields of ``ServerConfig``; pass ``config=`` instead to
    reuse one.  ``stats()``, ``reset()`` and ``queue_faults()`` are the
    in-process twins of the ``/_control`` endpoints.
    """

    __test__ = False  # not a pytest test class, whatever its users name it

    def __init__(self, config: ServerConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass either config or options, not both")
        self.config = config if config is not None else ServerConfig(**options)
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "MockOpenAIServer":
        """Start serving; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name="llmcli-test-server")
        self._thread.start()
        ready.result(timeout=START_TIMEOUT)  # re-raises a bind error here
        return self

    def _run(self, ready: "concurrent.futures.Future[None]") -> None:
        """Thread body: own a loop, bind, serve until stopped."""
        loop = self._loop = asyncio.new_event_loop()
        listener = Listener(self.config)
        try:
            loop.run_until_complete(listener.start())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        self._listener = listener
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(listener.shutdown())
            loop.close()

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        if self._thread is None or self._loop is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> "MockOpenAIServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port."""
        return self._require_listener().port

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:PORT/v1``."""
        return self._require_listener().base_url

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``/v1/models``, ``/_control/stats``...)."""
        listener = self._require_listener()
        return f"{self.config.scheme}://{self.config.host}:{listener.port}/{path.lstrip('/')}"

    def _require_listener(self) -> Listener:
        if self._listener is None:
            raise RuntimeError("server not started")
        return self._listener

    # -- control ---------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop, where the app state lives."""
        if self._loop is None or self._thread is None:
            raise RuntimeError("server not started")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=START_TIMEOUT)

    def stats(self) -> dict[str, Any]:
        """The same data as ``GET /_control/stats``."""
        app = self._require_listener().app
        return self._call(lambda: dict(app.stats.snapshot(), queued_faults=app.faults.queued))

    def reset(self) -> None:
        """Clear statistics, fault counters and queued faults."""
        app = self._require_listener().app
        def reset_both() -> None:
            app.stats.reset()
            app.faults.reset()

        self._call(reset_both)

    def queue_faults(self, faults: list[dict[str, Any]]) -> None:
        """Queue faults (``[{"status": 429, "count": 2}, {"kind": "drop"}]``) for chat requests."""
        app = self._require_listener().app
        self._call(lambda: app.queue_faults(faults))

    def batch_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Set Batch API knobs (``line_seconds=0.01``, ``expire_after=3``...; see
        ``testing/batches.py``); returns the knobs and how many batches were created."""
        app = self._require_listener().app
        return self._call(lambda: app.batches.control(knobs))

