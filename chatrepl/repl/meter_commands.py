"""The handlers of /context, /compact and /usage: the window, the policy, and what was spent."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from chatrepl.context.fitting import POLICIES, Budget, shown
from chatrepl.context.meter import money
from chatrepl.context.tokens import Count
from chatrepl.conversation.messages import Message
from chatrepl.errors import CommandError
from chatrepl.repl.results import Result, Table
from chatrepl.repl.state import ReplState

BAR_WIDTH = 40
CONTEXT_USAGE = "use /context, /context summarize|trim|off, /context window N|auto"


def context_command(state: ReplState, arg: str) -> Result:
    """Show the window; or set the policy or the window for this session."""
    conversation = state.conversation
    action, _, value = arg.partition(" ")
    if action in POLICIES and not value:
        conversation.context_policy = action
    elif action == "window" and value.strip():
        conversation.context_window = _window_size(value.strip())
    elif arg:
        raise CommandError(CONTEXT_USAGE)
    return context_report(state)


def context_report(state: ReplState) -> Result:
    """The bar and the table of /context."""
    keeper = state.context()
    budget = keeper.budget()
    window = budget.window
    lines = [f"context policy: {budget.policy} · window: {_window_text(budget)}"]
    if window.tokens is None:
        lines.append("automatic fitting is off until the window is known")
    else:
        lines.append(bar(budget))
    rows = [
        ("system prompt", shown(budget.system), "yours, or the model's default; with the framing"),
        ("summary", shown(budget.summary), "stands for the oldest messages (/compact)"),
        ("history sent", shown(budget.sent), "the messages this request carries"),
        ("history left out", shown(budget.left_out), "trimmed: in the session, not sent"),
        ("reserve for the reply", f"{budget.reserve:,}", "max_tokens, or reply_reserve"),
        ("free", _free(budget), "before the window is full"),
    ]
    return Result("\n".join(lines), table=Table(("part", "tokens", "what it is"), rows))


def bar(budget: Budget) -> str:
    """`[████████░░░░] 45% of 2,048 tokens` (history and system, then the reply's reserve)."""
    total = budget.window.tokens or 1
    used = min(BAR_WIDTH, round(BAR_WIDTH * budget.used / total))
    reserve = min(BAR_WIDTH - used, round(BAR_WIDTH * budget.reserve / total))
    cells = "█" * used + "▒" * reserve + "░" * (BAR_WIDTH - used - reserve)
    tilde = "" if budget.exact else "~"
    return f"[{cells}] {tilde}{budget.used / total:.0%} used, ▒ reply reserve, of {total:,} tokens"


def compact_command(state: ReplState, arg: str) -> Result:
    """Summarize everything but the last exchange now."""
    made = state.context().compact()
    if made is None:
        return Result("nothing to summarize yet: the conversation is short")
    return context_report(state)


def usage_command(state: ReplState, arg: str) -> Result:
    """The session's totals by model: requests, tokens, cost, mean time to the first token."""
    totals = usage_by_model(state)
    if not totals:
        return Result("no requests in this session yet")
    rows = [
        (model, str(t.requests), t.tokens_text(t.prompt), t.tokens_text(t.completion),
         t.cost_text(), t.first_token_text())
        for model, t in sorted(totals.items())
    ]  # fmt: skip
    headers = ("model", "requests", "prompt", "completion", "cost", "first token")
    return Result(table=Table(headers, rows))


class ModelTotals:
    """What one model's requests of a session added up to."""

    def __init__(self) -> None:
        self.requests = 0
        self.prompt = 0
        self.completion = 0
        self.exact = True
        self.cost: Decimal | None = Decimal(0)
        self.first_tokens: list[float] = []

    def add(self, message: Message, cost: Decimal | None) -> None:
        """Count one request's reply (or summary)."""
        self.requests += 1
        if message.usage is not None:
            self.prompt += message.usage.prompt_tokens
            self.completion += message.usage.completion_tokens
            self.exact = self.exact and not message.estimated
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        if message.timing is not None and message.timing.first_token is not None:
            self.first_tokens.append(message.timing.first_token)

    def tokens_text(self, tokens: int) -> str:
        """A token total, `~` when any of it was counted locally."""
        return shown(Count(tokens, self.exact))

    def cost_text(self) -> str:
        """The cost, or why there is none."""
        return "unknown" if self.cost is None else money(self.cost)

    def first_token_text(self) -> str:
        """Mean seconds to the first token."""
        if not self.first_tokens:
            return "—"
        return f"{sum(self.first_tokens) / len(self.first_tokens):.2f} s"


def usage_by_model(state: ReplState) -> dict[str, ModelTotals]:
    """Totals per model over the session's replies and summaries."""
    totals: dict[str, ModelTotals] = defaultdict(ModelTotals)
    for message in state.conversation.messages:
        if _is_request(message):
            totals[message.model or "?"].add(message, state.meter.cost_of(message))
    return dict(totals)


def _is_request(message: Message) -> bool:
    return (message.role == "assistant" and message.timing is not None) or (
        message.is_summary and message.usage is not None
    )


def _window_size(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        size = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise CommandError(f"the window is a number of tokens, not {text!r}") from None
    if size < 256:
        raise CommandError("a context window under 256 tokens cannot hold a conversation")
    return size


def _window_text(budget: Budget) -> str:
    window = budget.window
    size = f"{window.tokens:,} tokens" if window.tokens else "unknown"
    return f"{size} ({window.source})"


def _free(budget: Budget) -> str:
    free = budget.free
    if free is None:
        return "unknown"
    return shown(Count(free, budget.exact))
