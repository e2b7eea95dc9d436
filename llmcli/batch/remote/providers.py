"""Which Batch engine serves a profile's API dialect, and its endpoint."""

from __future__ import annotations

from typing import Any, Optional

from ...core.errors import ConfigError
from .parts import CHAT, MESSAGES, RESPONSES

# dialect -> (adapter module, class, default endpoint); the one table that knows them.
ENGINES = {
    "openai-chat": ("api", "BatchAPI", CHAT),
    "openai-responses": ("api", "BatchAPI", RESPONSES),
    "anthropic": ("anthropic", "AnthropicBatchAPI", MESSAGES),
}


def engine_for(options: Any, endpoint: Optional[str]) -> tuple[Any, Optional[str]]:
    """(the API adapter for ``options``, the endpoint to use: ``endpoint`` if given,
    else the dialect's own when it is not the OpenAI Chat default)."""
    import importlib

    api = getattr(options, "api", "openai-chat") or "openai-chat"
    found = ENGINES.get(api)
    if found is None:
        raise ConfigError(f"--remote runs the OpenAI Batch API and Anthropic Message Batches; "
                          f"the {api} API has no batch engine here", key="api")
    module, name, default = found
    if default == MESSAGES and endpoint not in (None, MESSAGES):
        raise ConfigError(f"--endpoint {endpoint}: Anthropic Message Batches run "
                          "/v1/messages only", key="api")
    cls = getattr(importlib.import_module(f".{module}", __package__), name)
    return cls(options), endpoint or (None if default == CHAT else default)
