"""Server-wide settings of the test server."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MODELS = ("test-model", "test-model-large", "gpt-4o-mini")
MODEL_CREATED = 1700000000
MODEL_OWNER = "llmcli-test"


@dataclass(frozen=True)
class ServerConfig:
    """How the test server behaves; every field is also a command-line flag.

    ``auth_header`` None means ``Authorization: Bearer <key>``; a name such as
    ``"api-key"`` reads the raw key from that header instead (Azure style).
    ``api_key`` None accepts any non-empty key.  ``required_query`` lists query
    parameters every /v1 request must carry, e.g. ``{"api-version": "2024-06-01"}``.
    ``echo_key`` makes the server as careless as some real ones, for leak tests: the raw
    key it was sent comes back in the 401 message, in every JSON error body (message and
    ``param``), in the ``x-request-id`` header of every /v1 answer and in the message of
    an in-stream error.
    """

    host: str = "127.0.0.1"
    port: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    auth_header: str | None = None
    required_query: dict[str, str] = field(default_factory=dict)
    latency_ms: float = 0
    stream_interval_ms: float = 0
    ratelimit_headers: bool = False
    echo_key: bool = False
    certfile: str | None = None
    keyfile: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable of model names (a list from a test, say) but keep a tuple.
        object.__setattr__(self, "models", tuple(self.models))
        if (self.keyfile is not None) and self.certfile is None:
            raise ValueError("keyfile given without certfile")
        if self.latency_ms < 0 or self.stream_interval_ms < 0:
            raise ValueError("latency_ms and stream_interval_ms must not be negative")

    @property
    def scheme(self) -> str:
        """``https`` when a certificate is configured."""
        return "https" if self.certfile else "http"
