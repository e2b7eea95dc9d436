"""The price table (``prices.json``, shipped) with the config's ``prices:`` on top,
and what a request cost from the usage the server returned."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Optional

TABLE = Path(__file__).with_name("prices.json")
PER = 1_000_000
FIELDS = ("input", "cached_input", "output", "batch_discount")
# A dated snapshot (gpt-4o-2024-08-06, claude-sonnet-4-20250514) costs what its
# family costs; so does an alias ending in -latest.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


class Price:
    """USD per 1M tokens, and the fraction off for the provider's Batch API. A plain
    class, not a dataclass: this module is on every chat's path after the reply, and
    building a frozen dataclass costs a millisecond of that path's 5 ms budget."""

    __slots__ = ("input", "output", "cached_input", "batch_discount")

    def __init__(self, input: float, output: float, cached_input: Optional[float] = None,
                 batch_discount: float = 0.0) -> None:
        self.input, self.output = input, output
        self.cached_input, self.batch_discount = cached_input, batch_discount

    def _key(self) -> tuple[float, float, Optional[float], float]:
        return (self.input, self.output, self.cached_input, self.batch_discount)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Price) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Price(input=%r, output=%r, cached_input=%r, batch_discount=%r)" % self._key()

    def cost(self, usage: Optional[Mapping[str, Any]], *, batch: bool = False) -> Optional[float]:
        """USD for one request's usage; ``None`` when there is no usage to price."""
        if not isinstance(usage, Mapping):
            return None
        prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
        if prompt is None and completion is None:
            return None
        cached = min(cached_tokens(usage), prompt or 0)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        dollars = ((prompt or 0) - cached) * self.input + cached * cached_rate \
            + (completion or 0) * self.output
        factor = 1.0 - self.batch_discount if batch else 1.0
        return round(dollars * factor / PER, 10)

    def worst_case(self, prompt_tokens: float, max_tokens: float, *, batch: bool = False) -> float:
        """The most a request can cost: every prompt token uncached, every allowed
        completion token used."""
        factor = 1.0 - self.batch_discount if batch else 1.0
        return (prompt_tokens * self.input + max_tokens * self.output) * factor / PER


def _int(value: Any) -> Optional[int]:
    """A token count; a negative one (a broken server) is no count, not a refund."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def cached_tokens(usage: Mapping[str, Any]) -> int:
    """Prompt tokens the provider served from its cache (OpenAI's
    ``prompt_tokens_details.cached_tokens``; Anthropic's ``cache_read_input_tokens``)."""
    details = usage.get("prompt_tokens_details")
    value = details.get("cached_tokens") if isinstance(details, Mapping) else None
    if value is None:
        value = usage.get("cache_read_input_tokens")
    return _int(value) or 0


class PriceError(ValueError):
    """A ``prices:`` entry in the config that is not a price."""


class PriceTable:
    """Model id -> :class:`Price`: the shipped table, then the config's entries."""

    def __init__(self, entries: Mapping[str, Price]) -> None:
        self.entries = dict(entries)
        self._found: dict[str, Optional[Price]] = {}   # a batch asks for one model a million times

    def lookup(self, model: Optional[str]) -> Optional[Price]:
        """The price of ``model``: exact id, else without a provider prefix
        (``openai/gpt-4o``) or a snapshot suffix (``-2024-08-06``)."""
        if not model or not isinstance(model, str):   # a server's odd `model`: no price
            return None
        try:
            return self._found[model]
        except KeyError:
            pass
        price = next((self.entries[n] for n in _candidates(model) if n in self.entries), None)
        self._found[model] = price
        return price

    def cost(self, model: Optional[str], usage: Optional[Mapping[str, Any]], *,
             batch: bool = False) -> Optional[float]:
        """USD for one request, ``None`` when the model's price is unknown."""
        price = self.lookup(model)
        return price.cost(usage, batch=batch) if price else None


def _candidates(model: str) -> list[str]:
    names = [model]
    bare = model.rsplit("/", 1)[-1]
    for name in (bare, _SNAPSHOT.sub("", model), _SNAPSHOT.sub("", bare)):
        if name not in names:
            names.append(name)
    return names


def shipped() -> dict[str, dict[str, Any]]:
    """The raw entries of the shipped table."""
    return json.loads(TABLE.read_text(encoding="utf-8"))["models"]


def parse_entry(model: str, entry: Any) -> Price:
    """One entry (shipped or from the config) as a :class:`Price`; raises
    :class:`PriceError` naming the model and the field."""
    if not isinstance(entry, Mapping):
        raise PriceError(f"prices.{model} must be a mapping with input and output")
    values: dict[str, float] = {}
    for name in FIELDS:
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                or value == float("inf"):     # .nan/.inf in YAML: a cost of NaN is not JSON
            raise PriceError(f"prices.{model}.{name} must be a number >= 0")
        values[name] = float(value)
    missing = [n for n in ("input", "output") if n not in values]
    if missing:
        raise PriceError(f"prices.{model} needs {' and '.join(missing)} (USD per 1M tokens)")
    if values.get("batch_discount", 0.0) > 1:
        raise PriceError(f"prices.{model}.batch_discount is a fraction (0.5 = half price)")
    return Price(**values)


def load_table(overrides: Optional[Mapping[str, Any]] = None) -> PriceTable:
    """The shipped table with ``overrides`` (the config's ``prices:``) on top. A
    config entry replaces the shipped entry of that model as a whole."""
    entries = {model: parse_entry(model, entry) for model, entry in shipped().items()}
    for model, entry in (overrides or {}).items():
        entries[str(model)] = parse_entry(str(model), entry)
    return PriceTable(entries)
