"""What a client needs to know to talk to an API, and the request pieces built from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional, Union

from .. import __version__
from .retry import RetryPolicy

DEFAULT_BASE_URL = "https://api.openai.com/v1"
log = logging.getLogger("llmcli")


@dataclass
class ClientOptions:
    """Connection settings for :class:`~llmcli.core.client.Client` and its async twin."""

    base_url: str = DEFAULT_BASE_URL
    api_key: Optional[str] = field(default=None, repr=False)
    auth_header: str = "Authorization"    # Azure OpenAI: "api-key"
    auth_scheme: str = "Bearer"           # "" sends the key as it is
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)   # Azure OpenAI: api-version
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    max_time: Optional[float] = None      # total budget across all attempts
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    verify: Union[bool, str] = True       # False, True, or a CA bundle path
    system_trust: bool = False            # use the OS trust store (needs `truststore`)
    proxy: Optional[str] = None

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/chat/completions``."""
        return self.base_url.rstrip("/") + path

    def request_headers(self, *, stream: bool = False) -> dict[str, str]:
        """Headers sent with every request; the key goes in ``auth_header``."""
        headers = {
            "user-agent": f"llmcli/{__version__}",
            "accept": "text/event-stream" if stream else "application/json",
        }
        if self.api_key:
            scheme = f"{self.auth_scheme} " if self.auth_scheme else ""
            headers[self.auth_header.lower()] = scheme + self.api_key
        headers.update({k.lower(): v for k, v in self.headers.items()})
        return headers

    def secrets(self) -> list[str]:
        """Values that must never appear in output, logs or errors."""
        return [self.api_key] if self.api_key else []


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret in ``text`` with its masked form."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, mask_key(secret))
    return text


def mask_key(key: Optional[str]) -> str:
    """``sk-...abcd``: enough to tell keys apart, never enough to use one."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "***"
    prefix = key[:3] if key[2:3] == "-" else ""
    return f"{prefix}...{key[-4:]}"
