"""``POST /v1/embeddings`` of the test server: a deterministic vector per input text."""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from .validation import RequestError

DIMENSIONS = 8


def vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The same text always gets the same vector (from its SHA-256), values in [-1, 1]."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [round(b / 127.5 - 1, 6) for b in digest[:dimensions]]


def embeddings_reply(body: Any, models: Iterable[str]) -> dict[str, Any]:
    """OpenAI's embeddings list for ``body``; raises ``RequestError`` when invalid."""
    if not isinstance(body, dict) or "input" not in body:
        raise RequestError(400, "Missing required parameter: 'input'.", "input")
    model = body.get("model")
    if model not in set(models):
        raise RequestError(404, f"The model '{model}' does not exist", "model", "model_not_found")
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if not inputs or not all(isinstance(text, str) for text in inputs):
        raise RequestError(400, "'input' must be a string or a list of strings.", "input")
    tokens = sum(len(text.split()) for text in inputs)
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": vector(text)}
                     for i, text in enumerate(inputs)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
