"""What a client needs to know to talk to an API, and the request pieces built from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .. import __version__
from .errors import ConfigError
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
    auth_query: Optional[str] = None      # send the key as this query parameter instead
    api: str = "openai-chat"              # the dialect (llmcli.core.dialects)
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
        """The absolute URL of an API path such as ``/chat/completions``; a query
        string in ``base_url`` is left out here and sent by :meth:`query_params`."""
        return self.base_url.split("?", 1)[0].split("#", 1)[0].rstrip("/") + path

    def shown_url(self) -> str:
        """``base_url`` as it may be printed: credentials in it masked."""
        return redact(self.base_url, self.secrets())

    def query_params(self) -> dict[str, str]:
        """Query parameters for every request: those written in ``base_url``, then
        ``query`` (Azure's api-version)."""
        _, _, query = self.base_url.split("#", 1)[0].partition("?")
        key = {self.auth_query: self.api_key} if self.auth_query and self.api_key else {}
        if not query:
            return {**self.query, **key}
        from urllib.parse import parse_qsl

        return {**dict(parse_qsl(query, keep_blank_values=True)), **self.query, **key}

    def validate(self) -> None:
        """Raise :class:`ConfigError` unless ``base_url`` is an http(s) URL with a host:
        caught once, before any request, rather than as a retried network error."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.base_url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact(self.base_url, self.secrets())
            raise ConfigError(f"base_url must be an http(s) URL such as "
                              f"{DEFAULT_BASE_URL}, not {shown!r}", key="base_url")

    def request_headers(self, *, stream: bool = False) -> dict[str, str]:
        """Headers sent with every request; the key goes in ``auth_header`` (unless
        ``auth_query`` sends it in the query string)."""
        headers = {
            "user-agent": f"llmcli/{__version__}",
            "accept": "text/event-stream" if stream else "application/json",
        }
        if self.api_key and not self.auth_query:
            scheme = f"{self.auth_scheme} " if self.auth_scheme else ""
            headers[self.auth_header.lower()] = scheme + self.api_key
        headers.update({k.lower(): v for k, v in self.headers.items()})
        return headers

    def secrets(self) -> list[str]:
        """Values that must never appear in output, logs or errors: the key, and any
        credential in headers, the query or the proxy URL."""
        found = [self.api_key] if self.api_key else []
        for name, value in list(self.headers.items()) + list(self.query_params().items()):
            if is_secret_name(name) and value:
                found.extend(_credential_parts(str(value)))
        if self.proxy:
            found.extend(url_password(self.proxy))
        return found


_SECRET_WORDS = ("key", "token", "secret", "auth", "password", "sig")


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter name suggests its value is a credential
    (Authorization, api-key, x-api-key, X-Auth-Token, key=..., sig=...)."""
    low = name.lower()
    return any(word in low for word in _SECRET_WORDS)


def _credential_parts(value: str) -> list[str]:
    """``Bearer sk-abc`` -> the whole value and the token after the scheme."""
    parts = [value]
    scheme, _, token = value.partition(" ")
    if token.strip() and scheme.isalpha():
        parts.append(token.strip())
    return parts


def url_password(url: str) -> list[str]:
    """The password of ``user:password@`` in a URL, if there is one."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret in ``text`` with its masked form (longest first, so a
    whole ``Bearer sk-...`` is masked before the bare key inside it)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, mask_key(secret))
    return text


def redact_obj(obj: Any, secrets: list[str]) -> Any:
    """``obj`` (parsed JSON, or text) with every secret masked in every string."""
    if not secrets:
        return obj
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {k: redact_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v, secrets) for v in obj]
    return obj


def mask_key(key: Optional[str]) -> str:
    """``sk-...abcd``: enough to tell keys apart, never enough to use one."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "***"
    prefix = key[:3] if key[2:3] == "-" else ""
    return f"{prefix}...{key[-4:]}"
