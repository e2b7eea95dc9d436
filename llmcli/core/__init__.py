"""The llmcli core: clients, retry policy, errors, SSE. No terminal, no Typer, no exit.

Imports here are lazy so that `import llmcli.core` costs nothing until a client is used.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Client": ".client",
    "ChatStream": ".client",
    "AsyncClient": ".aclient",
    "ClientOptions": ".options",
    "RetryPolicy": ".retry",
    "ChatResult": ".chat",
    "build_chat_body": ".chat",
    "messages_for": ".chat",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
