"""What to do next, added to an error line when the settings of the run explain it.

The core reports what happened (``HTTP 401``, ``HTTP 404``); only the CLI knows where
the settings came from (a profile that moved ``base_url`` and so dropped
``OPENAI_API_KEY``), so these hints are made here, from a small record of the run's
settings that :func:`remember` keeps when a command builds its client options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from ..core.errors import AuthenticationError, LLMCLIError, NotFoundError


@dataclass(frozen=True)
class HintContext:
    """What the hints need to know about the run's settings."""

    base_url: str
    key_sent: bool
    key_source: str            # "default", "env:OPENAI_API_KEY", "profile local", ...
    profile: Optional[str]
    openai_key_set: bool       # $OPENAI_API_KEY is set (whether or not it was used)
    max_retry_after: float
    key_env: str = "OPENAI_API_KEY"   # where the dialect's key is by default


def remember(settings: Any, options: Any) -> None:
    """Keep what the hints need, for the error boundary of this run."""
    from ..core.dialects import DEFAULT_API, spec
    from .env import current

    env = current()
    env.hint_context = HintContext(
        key_env=spec(settings["api"] or DEFAULT_API).key_env,
        base_url=options.base_url, key_sent=bool(options.api_key),
        key_source=settings.sources.get("api_key", "default"), profile=settings.profile,
        openai_key_set=bool(env.environ.get("OPENAI_API_KEY")),
        max_retry_after=options.retry.max_retry_after)


def hint_for(exc: BaseException) -> Optional[str]:
    """A hint for ``exc`` in this run, or ``None``."""
    from .env import current

    ctx = current().hint_context
    if not isinstance(ctx, HintContext) or not isinstance(exc, LLMCLIError):
        return None
    if isinstance(exc, AuthenticationError):
        return _auth_hint(ctx)
    if isinstance(exc, NotFoundError):
        return _missing_v1_hint(ctx, exc)
    return _retry_after_hint(ctx, exc)


def _auth_hint(ctx: HintContext) -> Optional[str]:
    if ctx.key_sent:
        return None
    if ctx.key_source.startswith("profile") and ctx.openai_key_set:
        return (f"no key was sent: profile {ctx.profile!r} sets its own base_url, and "
                "OPENAI_API_KEY is deliberately never sent to another host; give the "
                "profile its own key with api_key_env: NAME_OF_VARIABLE (or api_key_cmd) "
                "in the config file (llmcli config path)")
    return (f"no key was sent: set {ctx.key_env}, or api_key_env in the config file "
            "(llmcli config init writes a commented one)")


_VERSIONED = re.compile(r"/v\d+[a-z0-9]*(/|$)")


def _missing_v1_hint(ctx: HintContext, exc: NotFoundError) -> Optional[str]:
    """``--base-url http://localhost:11434``: most servers serve /v1/chat/completions."""
    from urllib.parse import urlsplit

    if exc.code == "model_not_found":
        return None
    try:
        parts = urlsplit(ctx.base_url)
    except ValueError:
        return None
    if parts.query or _VERSIONED.search(parts.path + "/"):   # versioned, or Azure-style
        return None
    fixed = ctx.base_url.split("?")[0].rstrip("/") + "/v1"
    return (f"the base URL {ctx.base_url} has no /v1, where OpenAI-compatible servers "
            f"answer: did you mean --base-url {fixed}?")


def _retry_after_hint(ctx: HintContext, exc: LLMCLIError) -> Optional[str]:
    asked = getattr(exc, "retry_after", None)
    if not exc.retryable or asked is None or asked <= ctx.max_retry_after:
        return None
    return (f"not retried: the server asked to wait {asked:.0f}s, longer than the "
            f"{ctx.max_retry_after:.0f}s llmcli waits at most; try again later")
