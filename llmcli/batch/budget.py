"""`batch --max-cost`: admit a request only if, even at its worst, spending stays within
the budget.

Admission reserves each request's worst case (every prompt token uncached, every
``max_tokens`` token used, at the model's price) until it finishes, then trades the
reservation for what the reply really cost. So the requests in flight can never take
the total past the budget, however they end. An item whose request would not fit is
not started: the run stops as an interrupt does, and ``--resume`` finishes it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..usage.estimate import max_tokens, prompt_tokens
from ..usage.prices import PriceTable

# The heuristic under-counts JSON by up to a third (docs/cost.md, "Estimates"): the
# prompt side of a reservation is padded so that the budget still holds.
PROMPT_MARGIN = 1.6


class Budget:
    """Spent and reserved USD against a limit."""

    def __init__(self, limit: float, prices: PriceTable) -> None:
        self.limit, self.prices = limit, prices
        self.spent = 0.0
        self.reserved = 0.0
        self.refusal: Optional[str] = None   # why the last admission failed

    def admit(self, body: Mapping[str, Any]) -> Optional[float]:
        """Reserve the worst case of sending ``body``; ``None`` (and :attr:`refusal`)
        when it might not fit, or cannot be bounded."""
        model = body.get("model")
        price = self.prices.lookup(model)
        if price is None:
            self.refusal = f"no price for model {model!r}: --max-cost cannot bound it"
            return None
        bound = max_tokens(body)
        if bound is None:
            self.refusal = "an item has no max_tokens: --max-cost cannot bound its reply"
            return None
        if _has_file(body):
            self.refusal = ("an item attaches a PDF, whose tokens are not estimated "
                            "(llmcli docs cost): --max-cost cannot bound it")
            return None
        worst = price.worst_case(prompt_tokens(body) * PROMPT_MARGIN, bound)
        if self.spent + self.reserved + worst > self.limit:
            self.refusal = (f"the next request could cost up to ${worst:.4f}, and "
                            f"${self.spent:.4f} is spent, ${self.reserved:.4f} in flight, "
                            f"of --max-cost ${self.limit:g}")
            return None
        self.reserved += worst
        return worst

    def settle(self, worst: float, cost: Optional[float]) -> None:
        """A request finished: its reservation becomes what it cost (its worst case
        when the server reported no usage, or a failure cost nothing)."""
        self.reserved = max(self.reserved - worst, 0.0)
        self.spent += worst if cost is None else cost


def _has_file(body: Mapping[str, Any]) -> bool:
    """Whether a message carries a file part (a PDF): it is billed by its pages, which
    the estimate does not count, so the reservation would be no bound at all."""
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "file"
                                             for p in content):
            return True
    return False
