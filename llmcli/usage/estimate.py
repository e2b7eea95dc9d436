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
from typing import Any, Callable, Iterable, Mapping, Optional

from .prices import Price, PriceTable

PER_MESSAGE = 4
PRIMING = 3
IMAGE_TOKENS = 765
# With the optional `bpe-openai` package (pip install 'llmcli[bpe-openai]'), the first
# SAMPLE items of each OpenAI model are counted exactly and the heuristic's total is
# scaled by the exact/heuristic ratio of that sample: exact for inputs up to SAMPLE
# items, calibrated beyond (exact counting runs at ~60,000 prompts/s here, too slow
# for the 15 s budget of a million prompts).
SAMPLE = 10_000
# Model families and their encodings (OpenAI's model -> encoding map); longest first.
ENCODINGS = (("gpt-3.5", "cl100k_base"), ("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"),
             ("gpt-4.5", "o200k_base"), ("gpt-5", "o200k_base"), ("gpt-4", "cl100k_base"),
             ("chatgpt", "o200k_base"), ("o1", "o200k_base"), ("o3", "o200k_base"),
             ("o4", "o200k_base"))


def prompt_tokens(body: Mapping[str, Any], count: Optional[Callable[[str], int]] = None) -> int:
    """The estimated prompt tokens of one request body; ``count`` counts a text's
    tokens (the heuristic :func:`text_tokens` by default)."""
    count = count or text_tokens
    messages = body.get("messages") or ()
    total = PRIMING
    for message in messages:
        total += PER_MESSAGE
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += count(content)
        elif isinstance(content, list):
            total += sum(_part_tokens(p, count) for p in content)
    return total


def _part_tokens(part: Any, count: Callable[[str], int]) -> int:
    if not isinstance(part, dict):
        return 0
    if part.get("type") == "image_url":
        return IMAGE_TOKENS
    text = part.get("text")
    return count(text) if isinstance(text, str) else 0


def encoding_for(model: str) -> Optional[str]:
    """The BPE encoding of an OpenAI model family, or ``None`` for any other model."""
    bare = model.rsplit("/", 1)[-1]
    return next((enc for prefix, enc in ENCODINGS if bare.startswith(prefix)), None)


def exact_counter(model: str) -> Optional[Callable[[str], int]]:
    """An exact token counter for ``model`` when `bpe-openai` is installed and the model
    is OpenAI's; else ``None`` (the heuristic is used)."""
    name = encoding_for(model)
    if name is None:
        return None
    try:
        import bpe_openai
    except ImportError:
        return None
    encoding = bpe_openai.get_encoding(name)
    return lambda text: len(encoding.encode_ordinary(text))


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
    count: Optional[Callable[[str], int]] = None   # exact counter (bpe-openai), if any
    sampled: int = 0          # items counted both ways
    sample_exact: int = 0
    sample_heuristic: int = 0

    def calibrate(self) -> None:
        """Scale the heuristic total by the exact/heuristic ratio of the sample."""
        if self.sampled and self.sample_heuristic:
            self.prompt_tokens = round(self.prompt_tokens * self.sample_exact / self.sample_heuristic)

    @property
    def method(self) -> str:
        """``heuristic``, ``exact`` (every item counted) or ``calibrated``."""
        if not self.sampled:
            return "heuristic"
        return "exact" if self.sampled == self.items else "calibrated"

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
        low = None if None in lows else sum(lows)
        high = None if None in highs else sum(highs)
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
                "method": self.method}

    @property
    def method(self) -> str:
        """How the prompt tokens were counted: one method, or ``mixed``."""
        methods = {m.method for m in self.models.values()} or {"heuristic"}
        return methods.pop() if len(methods) == 1 else "mixed"


def _usd(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 6)


def estimate(bodies: Iterable[Optional[Mapping[str, Any]]], table: PriceTable, *,
             exact: bool = True) -> Estimate:
    """Read every body (``None`` for an input line that cannot be sent) and sum up.
    Constant memory: one counter per model. ``exact``: count with `bpe-openai` where
    it is installed and the model is OpenAI's (see :data:`SAMPLE`)."""
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
            m = models[name] = ModelEstimate(price=table.lookup(name),
                                             count=exact_counter(name) if exact else None)
        m.items += 1
        tokens = prompt_tokens(body)
        m.prompt_tokens += tokens
        if m.count is not None and m.sampled < SAMPLE:
            m.sampled += 1
            m.sample_heuristic += tokens
            m.sample_exact += prompt_tokens(body, m.count)
        bound = max_tokens(body)
        if bound is None:
            m.unbounded += 1
        else:
            m.max_output_tokens += bound
    for m in models.values():
        m.calibrate()
    return result


def describe(est: Estimate) -> list[str]:
    """The estimate for people: lines for stdout."""
    data = est.to_dict()
    how = {"heuristic": "estimated, about 4 characters a token",
           "exact": "counted with bpe-openai",
           "calibrated": f"estimated, calibrated on {SAMPLE:,} items counted with bpe-openai",
           "mixed": "counted with bpe-openai for OpenAI models, estimated for the others"}
    lines = [f"items           {est.items:,}" + (f" ({est.invalid:,} cannot be sent)" if est.invalid else ""),
             f"input tokens    ~{est.prompt_tokens:,} ({how[est.method]})"]
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
