"""What requests cost and how fast they were: the line after each reply, the toolbar's totals.

Costs come from `genai-prices` by model (and provider, see prices.py); the embedded model costs
nothing; an unknown price is no price, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from chatrepl.config import Settings
from chatrepl.context import prices
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message


@dataclass
class Meter:
    """Costs of replies (cached per message) and the session's total."""

    settings: Settings
    free: bool = False  # the embedded model: every request costs 0
    _costs: dict[str, Decimal | None] = field(default_factory=dict, repr=False)

    def cost_of(self, message: Message) -> Decimal | None:
        """The cost of the request that produced `message` (a reply or a summary)."""
        if message.usage is None:
            return None
        if self.free:
            return Decimal(0)
        if message.id not in self._costs:
            self._costs[message.id] = prices.cost(
                message.model or "", message.usage, self.settings.base_url, self.settings.provider
            )
        return self._costs[message.id]

    def session_cost(self, conversation: Conversation) -> tuple[Decimal, bool]:
        """The total of known costs, and whether every request's cost was known."""
        total, complete = Decimal(0), True
        for message in conversation.messages:
            if message.usage is None or message.role not in ("assistant", "system"):
                continue
            cost = self.cost_of(message)
            if cost is None:
                complete = False
            else:
                total += cost
        return total, complete


def reply_meter(message: Message, cost: Decimal | None) -> str:
    """`120 prompt + 48 completion tokens · $0.0004 · first token 0.31 s · 52 tokens/s`."""
    usage = message.usage
    parts = []
    if usage is not None:
        tilde = "~" if message.estimated else ""
        parts.append(
            f"{tilde}{usage.prompt_tokens:,} prompt + {tilde}{usage.completion_tokens:,} "
            "completion tokens"
        )
        if cost is not None:
            parts.append(money(cost))
    timing = message.timing
    if timing is not None and timing.first_token is not None:
        parts.append(f"first token {timing.first_token:.2f} s")
        speed = tokens_per_second(message)
        if speed is not None:
            parts.append(f"{speed:.0f} tokens/s")
    return " · ".join(parts)


def tokens_per_second(message: Message) -> float | None:
    """Completion tokens over the time from the first token to the last."""
    if message.usage is None or message.timing is None:
        return None
    seconds = message.timing.generation_seconds
    if not seconds or message.usage.completion_tokens < 2:
        return None
    return (message.usage.completion_tokens - 1) / seconds


def money(amount: Decimal) -> str:
    """USD with enough digits to see small amounts."""
    if amount == 0:
        return "$0"
    return f"${amount:.4f}" if amount >= Decimal("0.0001") else f"${amount:.6f}"
