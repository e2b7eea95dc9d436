"""What a batch run's requests cost: prices, the ``--max-cost`` budget and the usage
log, behind the engine's :class:`~llmcli.batch.engine.Accounting` protocol."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from ..core.errors import APIError, error_kind
from ..usage import log as usage_log
from ..usage.prices import PriceTable, cached_tokens
from .budget import Budget
from .reader import Item


class RunAccounting:
    """Prices each reply, keeps the budget, queues one usage row per request."""

    def __init__(self, prices: PriceTable, *, budget: Optional[Budget] = None,
                 log: Optional[usage_log.BackgroundLog] = None, profile: Optional[str] = None,
                 batch: str = "-", log_content: bool = False,
                 redact: Callable[[str], str] = lambda text: text) -> None:
        self.prices, self.budget, self.log = prices, budget, log
        self.profile, self.batch, self.log_content, self.redact = profile, batch, log_content, redact

    def admit(self, body: dict[str, Any]) -> Optional[float]:
        """The budget's reservation for ``body`` (``None`` without a budget)."""
        return self.budget.admit(body) if self.budget else None

    def refusal(self) -> Optional[str]:
        """Why the budget refused the last request, if it did."""
        return self.budget.refusal if self.budget else None

    def settle(self, item: Item, body: dict[str, Any], reserved: Optional[float], result: Any,
               exc: Optional[APIError], attempts: int, latency_ms: int) -> Optional[float]:
        """One request finished: its cost (``None`` when unknown), settled and logged."""
        model = (result.model if result is not None else None) or body.get("model")
        cost = self.prices.cost(model, result.usage) if result is not None else None
        if self.budget is not None and reserved is not None:
            self.budget.settle(reserved, cost if result is not None else 0.0)
        if self.log is not None:
            self.log.put(self._row(item, body, model, result, exc, cost, attempts, latency_ms))
        return cost

    def _row(self, item: Item, body: dict[str, Any], model: Any, result: Any,
             exc: Optional[APIError], cost: Optional[float], attempts: int,
             latency_ms: int) -> tuple[Any, ...]:
        """The row in ``usage_log.COLUMNS`` order, built directly: this runs once per
        item, and a keyword-built row costs a third of the log's share of the run."""
        usage = result.usage if result is not None and isinstance(result.usage, dict) else None
        prompt = reply = None
        if self.log_content:
            import json

            prompt = self.redact(json.dumps(body.get("messages"), ensure_ascii=False))
            reply = self.redact(result.content) if result is not None else None
        if exc is None:
            status, error, request_id = "ok", None, result.request_id
        else:
            status, error, request_id = error_kind(exc), self.redact(exc.message), exc.request_id
        return (time.time(), "batch", self.profile, model, status, error,
                usage.get("prompt_tokens") if usage else None,
                usage.get("completion_tokens") if usage else None,
                cached_tokens(usage) if usage else None, cost, latency_ms, attempts,
                request_id, self.batch, item.id, prompt, reply)
