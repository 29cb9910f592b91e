"""Fitting a conversation into the model's context window, before every chat turn.

system prompt + history + the new message + a reserve for the reply must fit. When they would
not, the policy decides: `summarize` (the default) replaces the oldest exchanges with a summary
the model writes, before the window is full (at `summarize_at`, 80%); `trim` leaves the oldest
whole exchanges out of the request; `off` sends everything. The system prompt and the last
exchange are never left out. A failed summary falls back to trimming.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chatrepl.backends.base import Backend, ChatRequest, Request
from chatrepl.config import Settings
from chatrepl.context import summary
from chatrepl.context.summary import Observe
from chatrepl.context.tokens import Count, TokenCounter, counter_for
from chatrepl.context.window import Window, context_window, set_window
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import GenerationParams, Message, Usage
from chatrepl.errors import ChatReplError

POLICIES = ("summarize", "trim", "off")
KEEP_FRACTION = 0.4  # after a summary, the recent exchanges kept whole fill at most this much
SUMMARY_TOKENS = 600  # the longest summary asked for (less on small windows)
# A summary request's transcript is counted message by message: each message's label and the
# blank line before it take about this many tokens more than its count in a chat request, and
# a chunk fills at most this share of the room, for what the sum of parts misses.
LABEL_TOKENS = 4
CHUNK_FILL = 0.95
# No remote chat model has a smaller window (the embedded one's is known without a lookup).
SMALLEST_REMOTE_WINDOW = 4096


class ContextError(ChatReplError):
    """The message cannot fit the window whatever is left out."""


@dataclass(frozen=True)
class Budget:
    """Where the window's tokens go, for /context and the toolbar."""

    window: Window
    policy: str
    system: Count
    summary: Count
    sent: Count
    left_out: Count
    reserve: int

    @property
    def used(self) -> int:
        """Tokens the next request takes before the reply."""
        return self.system.tokens + self.summary.tokens + self.sent.tokens

    @property
    def free(self) -> int | None:
        """Tokens left after the request and the reply's reserve (None: unknown window)."""
        if self.window.tokens is None:
            return None
        return max(0, self.window.tokens - self.used - self.reserve)

    @property
    def exact(self) -> bool:
        """Whether every count is exact (else figures are shown with `~`)."""
        return all(c.exact for c in (self.system, self.summary, self.sent, self.left_out))


@dataclass
class ContextKeeper:
    """Applies the context policy to one conversation's turns."""

    conversation: Conversation
    backend: Backend
    settings: Settings
    notify: Callable[[str], None] = print
    counter: TokenCounter | None = None  # one counter for every model (tests); else by model
    observe: Observe | None = None  # told of each summary request (the request log)
    omitted: set[str] = field(default_factory=set)  # ids left out of the last request
    _counters: dict[str, TokenCounter] = field(default_factory=dict, repr=False)

    @property
    def policy(self) -> str:
        """The policy in force: the session's, else the config's."""
        return self.conversation.context_policy or self.settings.context

    def window(self, model: str | None = None) -> Window:
        """The context window (of the chat model, or `model`) and where its size comes from."""
        return context_window(self.settings, self.conversation, self.backend, model)

    def tokens(self, model: str | None = None) -> TokenCounter:
        """The counter for `model` (default: the conversation's chat model), made once."""
        if self.counter is not None:
            return self.counter
        model = model or self.model
        if model not in self._counters:
            self._counters[model] = counter_for(model, self.backend)
        return self._counters[model]

    @property
    def model(self) -> str:
        """The model whose window and tokenizer apply."""
        return self.conversation.chat_model

    def make_room(self, pending: Sequence[Message], params: GenerationParams | None) -> None:
        """Before a turn: summarize the oldest exchanges if the history with `pending` (the new
        message) would fill the window past the threshold. Committed at once: the summary is
        kept even if the turn that follows fails."""
        if self.policy != "summarize":
            return
        history = [*self._history(), *pending]
        window = self._window_for(history)
        if window.tokens is None:
            return
        budget = window.tokens - self.reserve(window.tokens, params)
        if self._count(history).tokens <= self.settings.summarize_at * budget:
            return
        try:
            self._summarize(history, budget, window.tokens, pending)
        except ChatReplError as error:
            self.notify(f"summarizing failed ({error}); older messages are left out instead")

    def compact(self) -> Message | None:
        """Summarize everything but the last exchange now (/compact)."""
        window = self.window().tokens or 8192
        history = self._history()
        budget = window - self.reserve(window, None)
        return self._summarize(history, budget, window, (), keep_fraction=0.0)

    def fit(self, params: GenerationParams | None) -> set[str]:
        """The ids to leave out of this request so it fits (trim, or after a failed summary)."""
        self.omitted = set()
        if self.policy == "off":
            return self.omitted
        history = self._history()
        window = self._window_for(history)
        if window.tokens is None:
            return self.omitted
        budget = window.tokens - self.reserve(window.tokens, params)
        exchanges = split_exchanges(history)
        first = 1 if exchanges and exchanges[0][0].is_summary else 0  # the summary stays
        while len(exchanges) - first > 1 and self._count(_flat(exchanges)).tokens > budget:
            self.omitted.update(m.id for m in exchanges.pop(first))
        needed = self._count(_flat(exchanges)).tokens
        if needed > budget:
            raise ContextError(
                f"this message needs about {needed:,} tokens with the system prompt, and the "
                f"{window.tokens:,}-token window keeps {window.tokens - budget:,} for the reply: "
                "shorten it, or /new"
            )
        if self.omitted:
            self.notify(f"{len(self.omitted)} older messages not sent (context: {self.policy})")
        return self.omitted

    def check_completion(self, prompt: str, params: GenerationParams | None) -> None:
        """Refuse a completion prompt (with its suffix) that cannot fit with its reply."""
        model = self.conversation.completion_model
        window = self.window(model).tokens
        if window is None:
            return
        counter = self.tokens(model)
        count = counter.count_text(prompt)
        if self.conversation.suffix:
            suffix = counter.count_text(self.conversation.suffix)
            count = Count(count.tokens + suffix.tokens, count.exact and suffix.exact)
        reply = params.max_tokens if params is not None and params.max_tokens else 0
        if count.tokens + reply > window:
            what = "prompt and suffix" if self.conversation.suffix else "prompt"
            raise ContextError(
                f"the {what} take {shown(count)} tokens and the reply up to {reply:,}: more "
                f"than the {window:,}-token window; shorten it or lower max_tokens"
            )

    def estimate_usage(self, request: Request, reply: Message) -> Usage | None:
        """Counted locally, for a server that reported no usage (marked estimated)."""
        counter = self.tokens(request.model)
        if isinstance(request, ChatRequest):
            prompt = counter.count_messages(request.system, request.messages).tokens
        else:
            prompt = counter.count_text(request.prompt + (request.suffix or "")).tokens
        completion = counter.count_text(reply.content).tokens if reply.content else 0
        return Usage(prompt, completion, prompt + completion)

    def learn(self, request: Request, usage: Usage) -> None:
        """A server's reported prompt tokens calibrate estimated counts for later turns."""
        if isinstance(request, ChatRequest):
            counter = self.tokens(request.model)
            counter.observe(request.system, request.messages, usage.prompt_tokens)

    def _window_for(self, history: Sequence[Message]) -> Window:
        """The window, unless the history is so small that it fits any remote model's: then
        nothing is looked up (no price data imported, no request to the server)."""
        window = set_window(self.settings, self.conversation, self.backend)
        if window is not None:
            return window
        room = SMALLEST_REMOTE_WINDOW - self.settings.reply_reserve  # a token >= a byte
        if _within_bytes(self.conversation.system, history, room):
            return Window(None, "not looked up: the conversation is short")
        return self.window()

    def reserve(self, window: int, params: GenerationParams | None) -> int:
        """Tokens kept for the reply: max_tokens when set, else reply_reserve (at most a
        quarter of the window)."""
        if params is not None and params.max_tokens:
            return params.max_tokens
        return min(self.settings.reply_reserve, window // 4)

    def budget(self, params: GenerationParams | None = None) -> Budget:
        """Where the window's tokens go now (what /context shows)."""
        from chatrepl.engine.history import chat_history

        window = self.window()
        sent = chat_history(self.conversation, self.omitted)
        summaries = [m for m in sent if m.is_summary]
        rest = [m for m in sent if not m.is_summary]
        left_out = [m for m in self.conversation.messages if m.id in self.omitted]
        counter, system = self.tokens(), self.conversation.system
        reserve = self.reserve(window.tokens, params) if window.tokens else 0
        # The system prompt's row: the prompt (or the one the model's chat template adds to a
        # request without one) and the reply's priming; each other row, what its messages add.
        prompt = counter.count_messages(system, [])
        default = counter.default_system_tokens(system, [*summaries, *rest])
        return Budget(
            window,
            self.policy,
            Count(prompt.tokens + default, prompt.exact),
            summary=_added(counter, system, [], summaries),
            left_out=_added(counter, system, summaries, left_out),  # as if sent
            sent=_added(counter, system, summaries, rest),  # last: a turn counts on from it
            reserve=reserve,
        )

    def _summarize(
        self,
        history: list[Message],
        budget: int,
        window: int,
        pending: Sequence[Message],
        keep_fraction: float = KEEP_FRACTION,
    ) -> Message | None:
        previous = next((m for m in history if m.is_summary), None)
        exchanges = split_exchanges([m for m in history if not m.is_summary and m not in pending])
        older = _older_exchanges(exchanges, self._count, int(budget * keep_fraction))
        if not older:
            return None
        size = min(SUMMARY_TOKENS, window // 8)
        made = self._summarize_in_chunks(previous, older, window - size, size)
        self.notify(
            f"summarized {len(made.summary_of or [])} earlier messages "
            f"(context: {self.policy}; /history shows them all)"
        )
        return made

    def _summarize_in_chunks(
        self, previous: Message | None, older: list[list[Message]], room: int, size: int
    ) -> Message:
        """Fold the older exchanges into the summary, as many per request as the window takes.

        A chunk's size is what its request holds without messages (counted once per summary)
        plus each exchange's own count (cached per message) and its label: counting the whole
        transcript again for each exchange made a long history's first summary quadratic.
        """
        room = int(room * CHUNK_FILL)
        chunk: list[Message] = []
        used = self._request_tokens(previous, size)
        for exchange in older:
            tokens = self._count(exchange).tokens + LABEL_TOKENS * len(exchange)
            if chunk and used + tokens > room:
                previous = summary.write_summary(
                    self.conversation, self.backend, previous, chunk, size, self.observe
                )
                chunk, used = [], self._request_tokens(previous, size)
            chunk += exchange
            used += tokens
        return summary.write_summary(
            self.conversation, self.backend, previous, chunk, size, self.observe
        )

    def _request_tokens(self, previous: Message | None, size: int) -> int:
        """A summary request's tokens before any message: instructions, the previous summary."""
        prompt = summary.summary_request(self.model, previous, [], size)
        return self._count(list(prompt.messages), prompt.system).tokens

    def _history(self) -> list[Message]:
        from chatrepl.engine.history import chat_history

        return chat_history(self.conversation)

    def _count(self, messages: Sequence[Message], system: str | None = None) -> Count:
        return self.tokens().count_messages(
            self.conversation.system if system is None else system, messages
        )


def shown(count: Count) -> str:
    """A count as shown to the user: `~` marks an estimate."""
    return f"{count.tokens:,}" if count.exact else f"~{count.tokens:,}"


def _within_bytes(system: str | None, history: Sequence[Message], limit: int) -> bool:
    """Whether the texts take at most `limit` UTF-8 bytes (counting stops once past it: a
    long history is not encoded at every turn)."""
    size = len((system or "").encode())
    for message in history:
        size += len(message.content.encode())
        size += sum(len(attachment.text.encode()) for attachment in message.attachments)
        if size > limit:
            return False
    return size <= limit


def _added(
    counter: TokenCounter, system: str | None, before: list[Message], messages: list[Message]
) -> Count:
    """The tokens `messages` add to a request of `system` and `before`; not the default system
    message a chat template adds when they come first (the system prompt's row shows it)."""
    if not messages:
        return Count(0, True)
    base = counter.count_messages(system, before)
    after = counter.count_messages(system, [*before, *messages])
    default = counter.default_system_tokens(system, [*before, *messages])
    default -= counter.default_system_tokens(system, before)
    return Count(max(0, after.tokens - base.tokens - default), base.exact and after.exact)


def split_exchanges(messages: Sequence[Message]) -> list[list[Message]]:
    """Whole exchanges: a user message with the replies and tool results after it (a summary
    stands alone)."""
    exchanges: list[list[Message]] = []
    for message in messages:
        if message.role == "user" or message.is_summary or not exchanges:
            exchanges.append([message])
        else:
            exchanges[-1].append(message)
    return exchanges


def _older_exchanges(
    exchanges: list[list[Message]], count: Callable[[Sequence[Message]], Count], keep: int
) -> list[list[Message]]:
    """The exchanges before the most recent ones that fit in `keep` tokens (at least the last
    exchange is kept)."""
    kept = 1
    while kept < len(exchanges) and count(_flat(exchanges[-(kept + 1) :])).tokens <= keep:
        kept += 1
    return exchanges[:-kept]


def _flat(exchanges: Sequence[Sequence[Message]]) -> list[Message]:
    return [message for exchange in exchanges for message in exchange]
