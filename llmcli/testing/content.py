"""Deterministic replies of the test server, as pure functions tests can call.

The rule: the reply is ``"echo: "`` followed by the text of the last user
message, with test directives (``#latency:50``, ``#fault:429*2``, ...) removed
and whitespace collapsed to single spaces.  A token is a whitespace-separated
word.  ``#chunks:N`` replaces the reply with the N words ``w0 w1 ... wN-1``.
``max_tokens`` (or ``max_completion_tokens``) N keeps the first N words and
makes the finish reason ``"length"``.

A stream sends the reply word by word: every delta is one word and a space,
except the last, which is the bare word, so the joined deltas equal the
non-stream content exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Directives are whole words so that "C#" or "issue #12" in a prompt survive.
_DIRECTIVE = re.compile(r"(?<!\S)#(keepalive|latency|chunks|interval|fault)(?::(\S*))?(?!\S)")
_NUMBER_DIRECTIVES = ("latency", "chunks", "interval")
# Caps keep a typo such as #chunks:10000000 from exhausting the server's memory.
MAX_CHUNKS = 100_000
MAX_DELAY_MS = 600_000


class DirectiveError(ValueError):
    """A directive in a prompt could not be understood (answered with a 400)."""


@dataclass(frozen=True)
class Directives:
    """Per-request behaviour requested by directives in the last user message."""

    latency_ms: int | None = None
    chunks: int | None = None
    interval_ms: int | None = None
    keepalive: bool = False
    fault: str | None = None


NO_DIRECTIVES = Directives()


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per request
class Answer:
    """Everything the server needs to answer one chat completion."""

    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    directives: Directives = NO_DIRECTIVES

    @property
    def pieces(self) -> list[str]:
        """The content deltas of a stream, joined they equal ``content``."""
        return stream_pieces(self.content)


def _directive_value(name: str, raw: str | None) -> int | str:
    """Validate the argument of one directive."""
    if name == "fault":
        if not raw:
            raise DirectiveError("directive #fault needs a spec, e.g. #fault:429")
        return raw
    if raw is None or not raw.isdigit():
        raise DirectiveError(f"directive #{name} needs a whole number, e.g. #{name}:10")
    value = int(raw)
    limit = MAX_CHUNKS if name == "chunks" else MAX_DELAY_MS
    if value > limit:
        raise DirectiveError(f"directive #{name} is limited to {limit}")
    return value


def parse_directives(text: str) -> tuple[str, Directives]:
    """Split ``text`` into its directive-free text and the directives found.

    Raises ``DirectiveError`` for a malformed directive value.
    """
    if "#" not in text:  # the benchmark's prompts take this exit
        return text, NO_DIRECTIVES
    found: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(text):
        name, raw = match.group(1), match.group(2)
        if name == "keepalive":
            found["keepalive"] = True
        elif name in _NUMBER_DIRECTIVES:
            key = {"latency": "latency_ms", "interval": "interval_ms"}.get(name, name)
            found[key] = _directive_value(name, raw)
        else:
            found["fault"] = _directive_value(name, raw)
    if not found:
        return text, NO_DIRECTIVES
    return _DIRECTIVE.sub(" ", text), Directives(**found)


def message_text(message: dict[str, Any]) -> str:
    """The text of a message: a string content, or its text parts joined by spaces."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"] for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The raw text of the last message with role ``user`` ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def count_tokens(text: str) -> int:
    """Tokens as the test server counts them: whitespace-separated words."""
    return len(text.split())


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Words over the text of all messages, directives included as sent."""
    return sum(count_tokens(message_text(m)) for m in messages)


def stream_pieces(content: str) -> list[str]:
    """Split a reply into stream deltas: each word plus a space, the last bare."""
    words = content.split()
    if not words:
        return []
    pieces = [word + " " for word in words]
    pieces[-1] = words[-1]
    return pieces


def answer_for(messages: list[dict[str, Any]], max_tokens: int | None = None) -> Answer:
    """Compute the full answer (content, finish reason, usage) for a request.

    Raises ``DirectiveError`` when a directive in the last user message is malformed.
    """
    text, directives = parse_directives(last_user_text(messages))
    if directives.chunks is not None:
        words = [f"w{i}" for i in range(directives.chunks)]
    else:
        words = ("echo: " + text).split()
    finish_reason = "stop"
    if max_tokens is not None and len(words) > max_tokens:
        words, finish_reason = words[:max_tokens], "length"
    return Answer(
        content=" ".join(words),
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens(messages),
        completion_tokens=len(words),
        directives=directives,
    )


def reply_for(messages: list[dict[str, Any]], max_tokens: int | None = None) -> str:
    """The assistant content the test server answers for ``messages``.

    >>> reply_for([{"role": "user", "content": "hello   world #latency:5"}])
    'echo: hello world'
    """
    return answer_for(messages, max_tokens).content
