"""What a client needs to know to talk to an API, and the request pieces built from it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

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
        base = self.base_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        if self.api_key and self.auth_header.lower() == "authorization" and "@" in base:
            base = _without_userinfo(base)
        return base + path

    def shown_url(self) -> str:
        """``base_url`` as it may be printed: credentials in it masked."""
        return mask_url(redact(self.base_url, self.secrets()))

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
            shown = self.shown_url()
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
        for url in (self.base_url, self.proxy):
            if url:
                found.extend(url_password(url))
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


def _without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``. The key goes in Authorization; httpx and
    aiohttp would turn URL credentials into Basic auth in that same header (httpx
    replacing the key with them, aiohttp refusing the request), so the key wins."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_password(url: str) -> list[str]:
    """The password of ``user:password@`` in a URL, if there is one."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


# A value shorter than this is not masked in data: keys such as `test`, `ollama` or
# `EMPTY` (local servers) are no secret, and replacing every "test" in a reply with
# `***` would silently corrupt results. Header names and URL passwords are masked by
# their place (mask_url, `config show`), whatever their length.
MIN_SECRET_LENGTH = 8


def maskable(secrets: Sequence[str]) -> list[str]:
    """The secrets long enough to be masked in text, longest first (so a whole
    ``Bearer sk-...`` is masked before the bare key inside it)."""
    return sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len,
                  reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret (of at least :data:`MIN_SECRET_LENGTH` characters) in
    ``text`` with its masked form. This is the one masking rule: errors, logs, the
    reply of `chat`/`stream`, conversations and batch records all go through it."""
    for secret in maskable(secrets):
        if secret in text:
            text = text.replace(secret, mask_key(secret))
    return text


def json_forms(secrets: Sequence[str]) -> tuple[str, ...]:
    """Each maskable secret as it reads inside JSON text: as it is, and JSON-escaped
    (a quote, a backslash or, with ASCII escapes, a non-ASCII character changes it)."""
    forms: list[str] = []
    for secret in maskable(secrets):
        for form in (secret, json.dumps(secret, ensure_ascii=False)[1:-1],
                     json.dumps(secret)[1:-1]):
            if form and form not in forms:
                forms.append(form)
    return tuple(forms)


def redact_json_bytes(body: bytes, secrets: Sequence[str]) -> bytes:
    """A JSON body with every secret masked in its text, before it is parsed: the
    same whole-text masking batch applies to each record line, so no field (content,
    model, id, raw) can carry a key that a server echoed."""
    forms = json_forms(secrets)
    if not forms or not any(form.encode("utf-8", "replace") in body for form in forms):
        return body
    text = body.decode("utf-8", "replace")
    return redact(text, forms).encode("utf-8")


def redact_obj(obj: Any, secrets: list[str]) -> Any:
    """``obj`` (parsed JSON, or text) with every secret masked in every string."""
    if not maskable(secrets):
        return obj
    try:
        return _redact_obj(obj, secrets)
    except RecursionError:     # nested deeper than Python recurses: keep no part of it
        return "(a value nested too deeply to show)"


def _redact_obj(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {k: _redact_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_obj(v, secrets) for v in obj]
    return obj


class StreamMask:
    """Masks secrets in a reply that arrives in pieces: a key echoed by a model comes
    split over many stream events, so each piece is masked together with what came
    before it, and a tail that may be the start of a secret is held back until the
    next piece (or :meth:`flush`) decides. Nothing is held when no tail can be."""

    __slots__ = ("_secrets", "_held")

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = maskable(secrets)
        self._held = ""

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def feed(self, piece: str) -> str:
        """The part of the reply so far that is safe to show now."""
        text = self._held + piece if self._held else piece
        keep = 0
        for secret in self._secrets:   # redact()'s rule, inlined: this runs per delta
            if secret in text:
                text = text.replace(secret, mask_key(secret))
        for secret in self._secrets:
            if secret[0] in text:   # else no end of text can start the secret
                tail = _prefix_tail(text, secret)
                if tail > keep:
                    keep = tail
        self._held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep] if keep else text

    def flush(self) -> str:
        """The end of the reply: what was held back, which was no secret after all."""
        held, self._held = self._held, ""
        return held


def _prefix_tail(text: str, secret: str) -> int:
    """The length of the longest end of ``text`` that is a proper start of ``secret``.
    Runs once per stream delta: only the places in the last ``len(secret) - 1``
    characters where the secret's first character occurs are tried, earliest first."""
    first = secret[0]
    at = text.find(first, max(0, len(text) - len(secret) + 1))
    while at >= 0:
        if secret.startswith(text[at:]):
            return len(text) - at
        at = text.find(first, at + 1)
    return 0


def mask_url(url: str) -> str:
    """``url`` with the password of a ``user:password@`` part masked, whatever its
    length: a URL is printed in errors, ``-v`` and `config show`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else "***"    # a lone user name may be a token too
    return f"{scheme}://{shown}@{host}{slash}{path}"


def mask_key(key: Optional[str]) -> str:
    """``sk-...abcd``: enough to tell keys apart, never enough to use one."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "***"
    prefix = key[:3] if key[2:3] == "-" else ""
    return f"{prefix}...{key[-4:]}"
