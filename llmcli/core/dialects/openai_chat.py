"""OpenAI Chat Completions (`POST /chat/completions`): llmcli's canonical shape, so the
request goes out as it is and the parsing lives in :mod:`llmcli.core.chat`."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..chat import ChatResult, StreamState, parse_chat_body, parse_models
from . import HTTPRequest


class OpenAIChat:
    """The default dialect, spoken by OpenAI and most compatible servers."""

    name = "openai-chat"

    def build_request(self, body: Mapping[str, Any], *, stream: bool) -> HTTPRequest:
        """The body as it is; a stream asks for the usage chunk at its end."""
        out = dict(body)
        if stream:
            out["stream"] = True
            out.setdefault("stream_options", {"include_usage": True})
        else:
            out.pop("stream", None)
            out.pop("stream_options", None)
        return HTTPRequest("POST", "/chat/completions", out)

    def parse_response(self, body: bytes, status: int, headers: Mapping[str, str]) -> ChatResult:
        """A `chat.completion` object."""
        return parse_chat_body(body, status, headers)

    def stream_state(self, request_id: Optional[str] = None) -> StreamState:
        """`chat.completion.chunk` events, ended by `[DONE]`."""
        return StreamState(request_id)

    def models_request(self) -> HTTPRequest:
        """`GET /models`."""
        return HTTPRequest("GET", "/models")

    def parse_models(self, body: bytes, status: int,
                     headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """OpenAI's `data` list, or a bare list."""
        return parse_models(body, status, headers)


DIALECT = OpenAIChat()
