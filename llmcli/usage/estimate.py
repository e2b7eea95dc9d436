"""What a request will use before it is sent: estimated prompt tokens, and the cost
range of a whole batch (`llmcli batch --dry-run`).

The estimate is a heuristic (docs/cost.md, "Estimates"): ``ceil(UTF-8 bytes / 4)``
per text, plus 4 tokens per message for the chat format's own tokens, plus 3 for the
reply's priming; an image counts 765 tokens (OpenAI's charge for a 1024x1024 image at
high detail); a PDF is not estimated. The output side is bounded by ``max_tokens``:
the range runs from no completion at all to every allowed token used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from .prices import Price, PriceTable

PER_MESSAGE = 4
PRIMING = 3
IMAGE_TOKENS = 765


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The estimated prompt tokens of one request body."""
    messages = body.get("messages") or ()
    total = PRIMING
    for message in messages:
        total += PER_MESSAGE
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += text_tokens(content)
        elif isinstance(content, list):
            total += sum(_part_tokens(p) for p in content)
    return total


def _part_tokens(part: Any) -> int:
    if not isinstance(part, dict):
        return 0
    if part.get("type") == "image_url":
        return IMAGE_TOKENS
    text = part.get("text")
    return text_tokens(text) if isinstance(text, str) else 0


def text_tokens(text: str) -> int:
    """``ceil(UTF-8 bytes / 4)``: 4 characters a token for ASCII, about 0.75 a token
    for a 3-byte character (CJK), which BPE vocabularies split more finely."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    return -(-size // 4)


def max_tokens(body: Mapping[str, Any]) -> Optional[int]:
    """The request's bound on completion tokens, if it has one."""
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


@dataclass
class ModelEstimate:
    """The figures of the items that use one model."""

    items: int = 0
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    unbounded: int = 0        # items with no max_tokens: no upper bound on their output
    price: Optional[Price] = None

    def cost_range(self, *, batch: bool = False) -> tuple[Optional[float], Optional[float]]:
        """(least, most) USD; ``None`` for an unknown price or an unbounded output."""
        if self.price is None:
            return None, None
        least = self.price.worst_case(self.prompt_tokens, 0, batch=batch)
        most = None if self.unbounded else self.price.worst_case(
            self.prompt_tokens, self.max_output_tokens, batch=batch)
        return least, most


@dataclass
class Estimate:
    """A whole input's estimate."""

    items: int = 0
    invalid: int = 0
    models: dict[str, ModelEstimate] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int:
        return sum(m.prompt_tokens for m in self.models.values())

    def cost_range(self, *, batch: bool = False) -> tuple[Optional[float], Optional[float]]:
        """(least, most) USD over every model; ``None`` where any part is unknown."""
        lows, highs = zip(*(m.cost_range(batch=batch) for m in self.models.values())) \
            if self.models else ((0.0,), (0.0,))
        low = None if None in lows else sum(lows)          # type: ignore[arg-type]
        high = None if None in highs else sum(highs)       # type: ignore[arg-type]
        return low, high

    def to_dict(self) -> dict[str, Any]:
        """The stable `batch --dry-run` JSON object (docs/cost.md)."""
        low, high = self.cost_range()
        blow, bhigh = self.cost_range(batch=True)
        return {"items": self.items, "invalid_input": self.invalid,
                "prompt_tokens": self.prompt_tokens,
                "max_output_tokens": None if any(m.unbounded for m in self.models.values())
                else sum(m.max_output_tokens for m in self.models.values()),
                "cost": {"min": _usd(low), "max": _usd(high)},
                "batch_cost": {"min": _usd(blow), "max": _usd(bhigh)},
                "models": {name: {"items": m.items, "prompt_tokens": m.prompt_tokens,
                                  "max_output_tokens": None if m.unbounded else m.max_output_tokens,
                                  "priced": m.price is not None}
                           for name, m in sorted(self.models.items())},
                "method": "heuristic"}


def _usd(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 6)


def estimate(bodies: Iterable[Optional[Mapping[str, Any]]], table: PriceTable) -> Estimate:
    """Read every body (``None`` for an input line that cannot be sent) and sum up.
    Constant memory: one counter per model."""
    result = Estimate()
    models = result.models
    for body in bodies:
        result.items += 1
        if body is None:
            result.invalid += 1
            continue
        name = str(body.get("model") or "")
        m = models.get(name)
        if m is None:
            m = models[name] = ModelEstimate(price=table.lookup(name))
        m.items += 1
        m.prompt_tokens += prompt_tokens(body)
        bound = max_tokens(body)
        if bound is None:
            m.unbounded += 1
        else:
            m.max_output_tokens += bound
    return result


def describe(est: Estimate) -> list[str]:
    """The estimate for people: lines for stdout."""
    data = est.to_dict()
    lines = [f"items           {est.items:,}" + (f" ({est.invalid:,} cannot be sent)" if est.invalid else ""),
             f"input tokens    ~{est.prompt_tokens:,} (estimated, about 4 characters a token)"]
    bound = data["max_output_tokens"]
    lines.append("output tokens   " + (f"at most {bound:,} (max_tokens)" if bound is not None
                                      else "no upper bound: some items have no max_tokens"))
    lines.append("cost            " + _range(data["cost"]))
    lines.append("with --remote   " + _range(data["batch_cost"]) + " (the provider's Batch API discount)")
    for name, m in sorted(est.models.items()):
        if m.price is None:
            lines.append(f"no price for model {name or '(none)'!r} ({m.items:,} items): "
                         "add it under `prices:` in the config")
    return lines


def _range(cost: Mapping[str, Optional[float]]) -> str:
    low, high = cost["min"], cost["max"]
    if low is None:
        return "unknown (a model has no price)"
    return f"${low:,.4f} to " + (f"${high:,.4f}" if high is not None else "no upper bound")
