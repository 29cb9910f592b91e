"""Fitting conversations into the context window: trim, summarize, off; summaries that extend
each other; the budget /context shows; completion prompts refused before sending. The scripted
backend plays the model and a word counter stands in for a tokenizer (exact and predictable)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from chatrepl.backends.base import Capabilities
from chatrepl.backends.scripted import ScriptedBackend, Step, chat_requests
from chatrepl.config import Settings
from chatrepl.context.fitting import ContextError, ContextKeeper, split_exchanges
from chatrepl.context.summary import PREFIX
from chatrepl.context.tokens import Count
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message, Usage
from chatrepl.engine.history import chat_history
from chatrepl.engine.turn import Turn, TurnRunner

MODEL = "scripted-chat"


@dataclass
class WordCounter:
    """One token per word, four per message: easy to reason about in a test."""

    model: str = MODEL
    calls: int = 0
    counted: int = 0  # words looked at, over all calls

    def count_text(self, text: str) -> Count:
        self.counted += len(text.split())
        return Count(len(text.split()), True)

    def count_messages(self, system: str | None, messages: Sequence[Message]) -> Count:
        self.calls += 1
        total = (self.count_text(system).tokens + 4) if system else 0
        for message in messages:
            total += self.count_text(message.content).tokens + 4
        return Count(total, True)

    def default_system_tokens(self, system: str | None, messages: Sequence[Message]) -> int:
        return 0


class Collect:
    def feed(self, text: str) -> None:
        pass


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def setup(
    policy: str = "summarize", window: int = 400, replies: Sequence[Step | str] = ()
) -> tuple[TurnRunner, ContextKeeper, list[str]]:
    conversation = Conversation(chat_model=MODEL, completion_model="c", system="be brief")
    backend = ScriptedBackend(capabilities=Capabilities(suffix=True, context_window=window)).then(
        *replies
    )
    settings = Settings(context=policy, reply_reserve=100)
    notes: list[str] = []
    keeper = ContextKeeper(conversation, backend, settings, notes.append, WordCounter())
    runner = TurnRunner(conversation, backend, settings, context=keeper)
    return runner, keeper, notes


def chat(runner: TurnRunner, text: str) -> None:
    runner.take(Turn(text, "chat"), Collect())


def test_off_sends_everything() -> None:
    runner, _keeper, notes = setup("off", replies=[words(60)] * 8)
    for i in range(8):
        chat(runner, words(30, f"q{i}"))
    last = chat_requests(runner.backend)[-1]  # type: ignore[arg-type]
    assert len(last.messages) == 15 and notes == []


def test_trim_leaves_out_whole_old_exchanges_never_the_system_or_the_last() -> None:
    runner, _keeper, notes = setup("trim", replies=[words(60)] * 8)
    for i in range(8):
        chat(runner, words(30, f"q{i}"))
    for request in chat_requests(runner.backend):  # type: ignore[arg-type]
        assert WordCounter().count_messages(request.system, request.messages).tokens <= 300
        assert request.system == "be brief"
        assert request.messages[0].role == "user"  # whole exchanges: never a reply alone
    last = chat_requests(runner.backend)[-1]  # type: ignore[arg-type]
    assert last.messages[-1].content == words(30, "q7")
    assert notes[-1].endswith("older messages not sent (context: trim)")
    assert len(runner.conversation.messages) == 16  # nothing deleted


def answers(summary_words: int = 20, reply_words: int = 60):
    """Summaries when asked for one, replies otherwise."""
    made = []

    def answer(request) -> Step:
        if "compress" in (request.system or ""):
            made.append(request)
            text = f"summary {len(made)} " + words(summary_words, "s")
            return Step.text(text, usage=Usage(100, summary_words + 2, summary_words + 102))
        return Step.text(words(reply_words))

    return answer, made


def test_summarize_replaces_the_oldest_part_and_keeps_the_originals() -> None:
    runner, _keeper, notes = setup("summarize")
    runner.backend.answer, made = answers()  # type: ignore[attr-defined]
    for i in range(6):
        chat(runner, words(30, f"q{i}"))
    conversation = runner.conversation
    summaries = [m for m in conversation.messages if m.is_summary]
    summary = summaries[0]
    assert summary.content == PREFIX + "summary 1 " + words(20, "s")
    covered = [m for m in conversation.messages if m.summarized_by == summary.id]
    assert [m.id for m in covered] == summary.summary_of
    assert covered[0].content == words(30, "q0")  # originals kept, marked
    assert len(conversation.messages) == 12 + len(summaries)  # nothing deleted
    assert summary.usage is not None  # the summary request counts in /usage
    sent = chat_history(conversation)
    assert sent[0] is summaries[-1] and all(not m.summarized_by for m in sent)
    assert "[User]\n" + words(30, "q0") in made[0].messages[0].content
    assert made[0].params.max_tokens == 50  # a summary is short: window // 8
    assert any(note.startswith("summarized ") for note in notes)
    last = chat_requests(runner.backend)[-1]  # type: ignore[arg-type]
    assert last.messages[0] is summaries[-1]


def test_a_later_summary_extends_the_previous_one() -> None:
    runner, _keeper, _notes = setup("summarize")
    runner.backend.answer, made = answers()  # type: ignore[attr-defined]
    for i in range(12):
        chat(runner, words(30, f"q{i}"))
    summaries = [m for m in runner.conversation.messages if m.is_summary]
    assert len(summaries) >= 2
    newest = [m for m in summaries if not m.summarized_by]
    assert len(newest) == 1  # earlier summaries are folded into the newest
    for earlier, later in itertools.pairwise(summaries):
        assert earlier.summarized_by == later.id  # each is folded into the next
        assert set(earlier.summary_of or []) < set(later.summary_of or [])
    assert "[Previous summary]" in made[-1].messages[0].content


def test_a_failed_summary_falls_back_to_trimming() -> None:
    runner, _keeper, notes = setup("summarize")

    def answer(request) -> Step:
        if "compress" in (request.system or ""):
            return Step.error("summaries are down")
        return Step.text(words(60))

    runner.backend.answer = answer  # type: ignore[attr-defined]
    for i in range(5):
        chat(runner, words(30, f"q{i}"))
    assert any("summarizing failed (summaries are down)" in note for note in notes)
    assert not any(m.is_summary for m in runner.conversation.messages)
    last = chat_requests(runner.backend)[-1]  # type: ignore[arg-type]
    assert WordCounter().count_messages(last.system, last.messages).tokens <= 300
    assert any("older messages not sent" in note for note in notes)


def test_a_message_that_cannot_fit_is_refused_before_sending() -> None:
    runner, _keeper, _notes = setup("trim", window=300)
    with pytest.raises(ContextError, match="this message needs about"):
        chat(runner, words(400))
    assert runner.backend.requests == []  # type: ignore[attr-defined]
    assert runner.conversation.messages == []


def test_unknown_window_means_no_fitting() -> None:
    conversation = Conversation(chat_model="no-such-model-anywhere")
    backend = ScriptedBackend().then("ok")
    keeper = ContextKeeper(
        conversation, backend, Settings(), print, WordCounter("no-such-model-anywhere")
    )
    runner = TurnRunner(conversation, backend, Settings(), context=keeper)
    chat(runner, words(5000))
    assert keeper.window().tokens is None
    assert "unknown" in keeper.window().source


def test_the_budget_shows_where_the_tokens_go() -> None:
    runner, keeper, _notes = setup("trim", replies=[words(60)] * 8)
    for i in range(8):
        chat(runner, words(30, f"q{i}"))
    budget = keeper.budget()
    assert budget.window.tokens == 400 and budget.reserve == 100
    assert budget.system == Count(6, True)  # "be brief" + 4
    assert budget.sent.tokens + budget.system.tokens <= 300
    assert budget.left_out.tokens > 0
    assert budget.free == 400 - budget.used - 100


@dataclass
class DefaultSystemCounter(WordCounter):
    """A word counter for a chat template that adds its own 20-token system message to a
    request without one (as SmolLM2's does), and 3 tokens priming the reply."""

    def count_messages(self, system: str | None, messages: Sequence[Message]) -> Count:
        total = super().count_messages(system, messages).tokens + 3
        return Count(total + self.default_system_tokens(system, messages), True)

    def default_system_tokens(self, system: str | None, messages: Sequence[Message]) -> int:
        return 0 if system or not messages or messages[0].role == "system" else 20


@pytest.mark.parametrize(
    ("system", "summarized", "system_row"),
    [("be brief", False, 2 + 4 + 3), (None, False, 20 + 3), (None, True, 3)],
)
def test_the_budget_puts_a_templates_own_system_prompt_in_the_system_row(
    system: str | None, summarized: bool, system_row: int
) -> None:
    """The rows add up to the request; a template's system message, sent only when the request
    has none (a summary is one), is in the system prompt's row, not the history's."""
    conversation = Conversation(chat_model=MODEL, system=system)
    if summarized:
        conversation.add(Message("system", "the gist", summary_of=["older"]))
    conversation.add(Message("user", "one two three"))
    conversation.add(Message("assistant", "four five"))
    counter = DefaultSystemCounter()
    keeper = ContextKeeper(conversation, ScriptedBackend(), Settings(), print, counter)
    budget = keeper.budget()
    assert budget.system == Count(system_row, True)
    assert budget.summary.tokens == (2 + 4 if summarized else 0)
    assert budget.sent == Count((3 + 4) + (2 + 4), True)
    assert budget.used == counter.count_messages(system, chat_history(conversation)).tokens


def test_compact_summarizes_now() -> None:
    runner, keeper, _notes = setup("summarize", window=100_000, replies=["a1", "a2", "a3"])
    for i in range(3):
        chat(runner, f"question {i}")
    runner.backend.then("the gist")  # type: ignore[attr-defined]
    made = keeper.compact()
    assert made is not None and made.content == PREFIX + "the gist"
    assert [m.content for m in chat_history(runner.conversation)] == [
        PREFIX + "the gist",
        "question 2",
        "a3",
    ]


def test_a_long_history_is_summarized_in_chunks_that_fit_counting_each_message_once() -> None:
    runner, keeper, _notes = setup("summarize", window=2000)
    runner.backend.answer, made = answers()  # type: ignore[attr-defined]
    history = runner.conversation.messages
    for i in range(300):
        history += [Message("user", words(20, f"q{i}")), Message("assistant", words(30, f"a{i}"))]
    counter = keeper.counter
    assert isinstance(counter, WordCounter)
    counter.counted = 0
    summary = keeper.compact()
    assert summary is not None and len(summary.summary_of or []) == 598  # but the last exchange
    assert len(made) > 5  # in chunks, each folded into the next
    for request in made:
        sent = counter.count_messages(request.system, request.messages).tokens
        assert sent + request.params.max_tokens <= 2000
    assert counter.counted < 3 * 300 * 50  # each message counted about once: not quadratic


def test_completion_prompts_larger_than_the_window_are_refused() -> None:
    runner, _keeper, _notes = setup("summarize", window=500)
    runner.conversation.suffix = words(100)
    with pytest.raises(
        ContextError, match=r"the prompt and suffix take 500 tokens and the reply up to 256"
    ):
        runner.take(Turn(words(400), "complete"), Collect())
    assert runner.backend.requests == []  # type: ignore[attr-defined]


def test_two_hundred_exchanges_on_a_small_window_never_overflow() -> None:
    runner, _keeper, notes = setup("summarize", window=2048)
    runner.backend.answer, made = answers(reply_words=40)  # type: ignore[attr-defined]
    for i in range(200):
        chat(runner, words(25, f"q{i}"))
    for request in runner.backend.requests:  # type: ignore[attr-defined]
        used = WordCounter().count_messages(request.system, request.messages).tokens
        assert used <= 2048 - 100  # every request leaves the reply its reserve
    assert len([m for m in runner.conversation.messages if m.role == "user"]) == 200
    assert made  # it summarized along the way, and never needed to trim
    assert not any("not sent" in note for note in notes)


def test_exchanges_split_at_user_messages() -> None:
    messages = [
        Message("system", "s", summary_of=["x"]),
        Message("user", "q1"),
        Message("assistant", "a1"),
        Message("tool", "t", tool_call_id="c"),
        Message("user", "q2"),
    ]
    assert [len(e) for e in split_exchanges(messages)] == [1, 3, 1]
