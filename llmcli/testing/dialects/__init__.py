"""The native APIs the test server speaks beside Chat Completions: the OpenAI
Responses API, the Anthropic Messages API and the Google Gemini API.

Each is one module with a :class:`~.base.NativeAPI` subclass: how it recognises its
requests, checks the key, reads a request into the server's canonical messages, and
renders replies, stream events and errors in its own shapes. ``base.serve`` runs the
part they share (directives, faults, plans), so faults and directives behave the same
in every API. ``App.handle`` asks :func:`native_api` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..plans import Request
    from .base import NativeAPI

_APIS: list["NativeAPI"] = []


def native_api(request: "Request") -> Optional["NativeAPI"]:
    """The native API a request is for, or None for the OpenAI chat API."""
    if not _APIS:
        from .anthropic import AnthropicAPI
        from .gemini import GeminiAPI
        from ..message_batches import MessageBatchesAPI
        from .responses import ResponsesAPI

        _APIS.extend([ResponsesAPI(), AnthropicAPI(), GeminiAPI(), MessageBatchesAPI()])
    for api in _APIS:
        if api.matches(request):
            return api
    return None
