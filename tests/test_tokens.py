"""Token counting: exact OpenAI counts from the shipped encodings, the per-message cache, the
backend's own tokenizer, and calibrated estimates for every other model."""

from __future__ import annotations

import gc
import gzip
import hashlib
import inspect
import re
import subprocess
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any

import pytest

from chatrepl.backends.base import Capabilities, ChatRequest, ToolSpec
from chatrepl.backends.wire import chat_messages
from chatrepl.context import encodings, tokens
from chatrepl.context.encodings import CL100K, O200K, EncodingError, encoding_for_model
from chatrepl.context.tokens import (
    BackendCounter,
    Count,
    EncodingCounter,
    EstimatingCounter,
    counter_for,
    estimate_tokens,
)
from chatrepl.conversation.messages import Attachment, Message, ToolCall
from chatrepl.errors import BackendError

# OpenAI cookbook, "How to count tokens with tiktoken": the example messages, and the prompt
# tokens the API reported for them (129 for gpt-3.5-turbo and gpt-4, 124 for gpt-4o and
# gpt-4o-mini).
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]
WEATHER_TOOL = ToolSpec(
    "get_current_weather",
    "Get the current weather in a given location",
    {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            },
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    },
)
WEATHER_SYSTEM = "You are a helpful assistant that can answer to questions about the weather."
WEATHER_QUESTION = "What's the weather like in San Francisco?"


class SpyEncoder:
    """A real tiktoken Encoding that records every text it is asked to encode."""

    def __init__(self, name: str) -> None:
        self.encoding = encodings.load_encoding(name)
        self.texts: list[str] = []

    def encode_ordinary(self, text: str) -> list[int]:
        self.texts.append(text)
        return self.encoding.encode_ordinary(text)


def chat(count: int) -> list[Message]:
    """A conversation of alternating questions and answers."""
    return [
        Message("user" if i % 2 == 0 else "assistant", f"message number {i}: " + "word " * (i % 7))
        for i in range(count)
    ]


# --- known values --------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-3.5-turbo", "o3"])
def test_hello_world_is_two_tokens(model: str) -> None:
    assert counter_for(model).count_text("hello world") == Count(2, True)


@pytest.mark.parametrize(
    ("encoding", "text", "ids"),
    [
        (O200K, "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
        (O200K, "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
        (CL100K, "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
        (O200K, "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
        (CL100K, "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
        (O200K, "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
        (
            CL100K,
            "お誕生日おめでとう",
            [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
        ),
    ],
)
def test_token_ids_match_openai_cookbook(encoding: str, text: str, ids: list[int]) -> None:
    assert encodings.load_encoding(encoding).encode_ordinary(text) == ids


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4o", 124), ("gpt-4o-mini", 124), ("gpt-4", 129), ("gpt-3.5-turbo", 129)],
)
def test_chat_messages_count_as_the_api_reported_in_the_cookbook(model: str, expected: int) -> None:
    assert counter_for(model).count_wire(COOKBOOK_MESSAGES) == Count(expected, True)


@pytest.mark.parametrize(("model", "expected"), [("gpt-4o", 101), ("gpt-4", 105)])
def test_tool_definitions_follow_the_cookbook_and_are_marked_estimated(
    model: str, expected: int
) -> None:
    counter = counter_for(model)
    messages = counter.count_messages(WEATHER_SYSTEM, [Message("user", WEATHER_QUESTION)])
    total = messages + counter.count_tools([WEATHER_TOOL])
    assert messages.exact
    assert total == Count(expected, False)
    assert str(total) == f"~{expected}"


def test_no_tools_add_nothing() -> None:
    assert counter_for("gpt-4o").count_tools([]) == Count(0, True)


def test_messages_count_as_the_wire_messages_a_backend_sends() -> None:
    counter = counter_for("gpt-4o")
    history = [
        Message("user", "Summarize this.", attachments=[Attachment("notes.md", "a\n```\nb")]),
        Message("assistant", "It says a and b."),
    ]
    request = ChatRequest(model="gpt-4o", messages=tuple(history), system="Be brief.")
    counted = counter.count_messages("Be brief.", history)
    assert counted == counter.count_wire(chat_messages(request))
    assert counted.exact
    without = counter.count_messages("Be brief.", [Message("user", "Summarize this."), history[1]])
    assert counted.tokens > without.tokens + 5  # the attachment is counted


def test_tool_calls_and_results_are_counted_but_marked_estimated() -> None:
    counter = counter_for("gpt-4o")
    call = ToolCall("call_1", "read_file", '{"path": "notes.md"}')
    history = [
        Message("user", "read notes.md"),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "the notes", tool_call_id="call_1", name="read_file"),
    ]
    with_calls = counter.count_messages(None, history)
    plain = counter.count_messages(None, history[:1])
    assert not with_calls.exact
    assert plain.exact
    arguments = counter.count_text(call.arguments).tokens + counter.count_text("read_file").tokens
    assert with_calls.tokens >= plain.tokens + arguments


def test_count_str_marks_estimates() -> None:
    assert str(Count(1234, True)) == "1,234"
    assert str(Count(1234, False)) == "~1,234"
    assert Count(2, True) + Count(3, False) == Count(5, False)


def test_awkward_text_is_counted_without_error() -> None:
    counter = counter_for("gpt-4o")
    assert counter.count_text("<|endoftext|>").tokens > 1  # text, not a special token
    assert counter.count_text("lone \ud800 surrogate").tokens > 0
    assert counter.count_text("") == Count(0, True)


# --- the shipped data ----------------------------------------------------------------------


def official_hash(name: str) -> str:
    from tiktoken_ext import openai_public

    source = inspect.getsource(getattr(openai_public, name))
    found = re.search(r'expected_hash="([0-9a-f]{64})"', source)
    assert found, f"tiktoken declares no hash for {name}"
    return found.group(1)


@pytest.mark.parametrize("name", [O200K, CL100K])
def test_shipped_files_are_openais_byte_for_byte(name: str) -> None:
    text = gzip.decompress(encodings.data_file(name).read_bytes())
    assert hashlib.sha256(text).hexdigest() == official_hash(name) == encodings.SPECS[name].sha256
    ranks = [int(line.split()[1]) for line in text.splitlines()]
    assert ranks == list(range(len(ranks)))  # what the loader relies on


@pytest.mark.parametrize("name", [O200K, CL100K])
def test_patterns_and_special_tokens_are_tiktokens(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiktoken_ext import openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})
    declared = getattr(openai_public, name)()
    spec = encodings.SPECS[name]
    assert (spec.pat_str, spec.special_tokens) == (declared["pat_str"], declared["special_tokens"])


def test_a_damaged_data_file_is_refused(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = tmp_path / "o200k_base.tiktoken.gz"
    damaged.write_bytes(gzip.compress(b"IQ== 0\nIg== 1\n"))
    monkeypatch.setattr(encodings, "data_file", lambda name: damaged)
    with pytest.raises(EncodingError, match="damaged"):
        encodings.read_ranks(encodings.SPECS[O200K])
    damaged.write_bytes(b"not gzip")
    with pytest.raises(EncodingError, match="cannot read"):
        encodings.read_ranks(encodings.SPECS[O200K])


def test_an_encoding_that_cannot_load_gives_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> Any:
        raise EncodingError("o200k_base's data is damaged; reinstall chatrepl")

    monkeypatch.setattr(tokens, "load_encoding", broken)
    counter = EncodingCounter("gpt-4o", O200K)
    count = counter.count_messages("Be brief.", [Message("user", "hello there")])
    assert not count.exact
    assert count.tokens > 0
    assert counter.problem and "damaged" in counter.problem
    assert not counter.count_text("hello world").exact


# --- mapping and choice --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", O200K),
        ("gpt-4o-mini-2024-07-18", O200K),
        ("chatgpt-4o-latest", O200K),
        ("gpt-4.1-nano", O200K),
        ("gpt-4.5-preview", O200K),
        ("gpt-5", O200K),
        ("gpt-5-mini", O200K),
        ("gpt-5.1", O200K),
        ("o1", O200K),
        ("o1-mini", O200K),
        ("o3-mini", O200K),
        ("o4-mini-2025-04-16", O200K),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", O200K),
        ("GPT-4o", O200K),
        ("gpt-4", CL100K),
        ("gpt-4-turbo", CL100K),
        ("gpt-4-0613", CL100K),
        ("gpt-3.5-turbo", CL100K),
        ("gpt-3.5-turbo-instruct", CL100K),
        ("gpt-35-turbo", CL100K),
        ("text-embedding-3-small", CL100K),
        ("llama3", None),
        ("SmolLM2-135M-Instruct", None),
        ("my-azure-deployment", None),
        ("gpt-oss-20b", None),
        ("gpt-40", None),
        ("o10", None),
        ("", None),
    ],
)
def test_models_map_to_their_encoding(model: str, encoding: str | None) -> None:
    assert encoding_for_model(model) == encoding


def test_counter_for_chooses_and_remembers() -> None:
    assert isinstance(counter_for("gpt-4o"), EncodingCounter)
    assert isinstance(counter_for("llama3"), EstimatingCounter)
    assert counter_for("llama3") is counter_for("llama3")
    assert counter_for("gpt-4o").model == "gpt-4o"
    assert counter_for("gpt-4o-mini").model == "gpt-4o-mini"
    assert not counter_for("llama3").exact


def test_importing_the_counters_does_not_import_tiktoken() -> None:
    code = (
        "import sys\n"
        "from chatrepl.context.tokens import counter_for\n"
        "from chatrepl.conversation.messages import Message\n"
        "counter_for('llama3').count_messages('hi', [Message('user', 'hello')])\n"
        "assert 'tiktoken' not in sys.modules, 'imported early'\n"
        "counter_for('gpt-4o').count_text('hello')\n"
        "assert 'tiktoken' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the cache -----------------------------------------------------------------------------


def test_a_session_is_encoded_once_then_only_new_messages() -> None:
    spy = SpyEncoder(O200K)
    counter = EncodingCounter("gpt-4o", O200K, encoder=spy)
    history = chat(200)
    first = counter.count_messages("Be brief.", history)
    # each role once, then the system prompt and every message's content, once each
    assert spy.texts == ["assistant", "system", "user", "Be brief.", *(m.content for m in history)]
    spy.texts.clear()
    assert counter.count_messages("Be brief.", history) == first
    assert spy.texts == []
    history.append(Message("user", "and one more question"))
    later = counter.count_messages("Be brief.", history)
    assert spy.texts == ["and one more question"]
    assert later.tokens == first.tokens + 3 + 1 + len(spy.encoding.encode("and one more question"))


def test_a_changed_message_is_counted_again() -> None:
    spy = SpyEncoder(O200K)
    counter = EncodingCounter("gpt-4o", O200K, encoder=spy)
    history = chat(4)
    before = counter.count_messages(None, history)
    spy.texts.clear()
    history[1].content = "a different and much longer answer than before, with more words"
    after = counter.count_messages(None, history)
    assert spy.texts == [history[1].content]
    assert after.tokens > before.tokens
    # The same message read again from the session file, now with an attachment: a new entry.
    first = history[0]
    history[0] = Message(
        first.role, first.content, id=first.id, attachments=[Attachment("a.txt", "attached text")]
    )
    spy.texts.clear()
    counter.count_messages(None, history)
    assert len(spy.texts) == 1
    assert "attached text" in spy.texts[0]


def test_a_reply_whose_tool_calls_arrive_after_it_was_counted_is_counted_again() -> None:
    counter = EncodingCounter("gpt-4o", O200K, encoder=SpyEncoder(O200K))
    reply = Message("assistant", "")
    history = [*chat(3), reply]
    before = counter.count_messages(None, history)
    # As a turn finishes a streamed reply: the content is replaced (by the same empty string
    # object) and the tool calls list too.
    reply.content = "".join([])
    reply.tool_calls = [ToolCall("call_1", "read_file", '{"path": "a long/path/to/notes.md"}')]
    after = counter.count_messages(None, history)
    assert after.tokens > before.tokens + 10
    assert before.exact and not after.exact


def test_the_same_text_under_another_id_is_its_own_entry() -> None:
    spy = SpyEncoder(CL100K)
    counter = EncodingCounter("gpt-4", CL100K, encoder=spy)
    one, two = Message("user", "same words"), Message("user", "same words")
    counter.count_messages(None, [one])
    spy.texts.clear()
    counter.count_messages(None, [one, two])
    assert spy.texts == ["same words"]


# --- a backend that tokenizes --------------------------------------------------------------


@dataclass
class TokenizingBackend:
    """Counts words as tokens; `fail` makes count_tokens raise like a dead worker."""

    overhead: tuple[int, int] | None = (4, 3)
    fail: bool = False
    calls: list[list[str]] = field(default_factory=list)
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(token_counting=True, embedded=True)
    )

    def count_tokens(self, texts: list[str]) -> list[int]:
        if self.fail:
            raise BackendError("the embedded model's process ended")
        self.calls.append(texts)
        return [len(text.split()) for text in texts]

    def chat_overhead(self) -> tuple[int, int]:
        if self.overhead is None:
            raise RuntimeError("no template")
        return self.overhead


def test_a_backend_that_tokenizes_counts_exactly_in_one_call() -> None:
    backend = TokenizingBackend()
    counter = counter_for("SmolLM2-135M-Instruct", backend)
    assert isinstance(counter, BackendCounter)
    history = [Message("user", "one two three"), Message("assistant", "four five")]
    count = counter.count_messages("be kind", history)
    # per message: 4 + role (1 word) + content; then 3 priming the reply
    assert count == Count((4 + 1 + 2) + (4 + 1 + 3) + (4 + 1 + 2) + 3, True)
    assert len(backend.calls) == 1
    counter.count_messages("be kind", history)
    assert len(backend.calls) == 1  # cached
    assert counter.count_text("a b c d") == Count(4, True)


def test_a_backend_without_its_template_overhead_is_estimated() -> None:
    backend = TokenizingBackend(overhead=None)
    counter = counter_for("local-model", backend)
    assert not counter.count_messages(None, [Message("user", "hi there")]).exact
    assert backend.calls


def test_a_failing_backend_gives_estimates_and_recovers() -> None:
    backend = TokenizingBackend(fail=True)
    counter = counter_for("local-model", backend)
    history = [Message("user", "one two three four five six seven eight")]
    assert not counter.count_messages(None, history).exact
    backend.fail = False
    assert counter.count_messages(None, history) == Count(4 + 1 + 8 + 3, True)


def test_a_backend_without_token_counting_is_not_asked() -> None:
    backend = TokenizingBackend(capabilities=Capabilities(token_counting=False))
    assert isinstance(counter_for("llama3", backend), EstimatingCounter)
    assert isinstance(counter_for("gpt-4o", backend), EncodingCounter)
    assert backend.calls == []


def test_counters_are_remembered_per_backend() -> None:
    first, second = TokenizingBackend(), TokenizingBackend()
    assert counter_for("m", first) is counter_for("m", first)
    assert counter_for("m", first) is not counter_for("m", second)


@dataclass
class TemplateBackend(TokenizingBackend):
    """Tells SmolLM2's template figures; its tokenizer merges whitespace runs as SmolLM2's
    does ("\n" + "  x" is "\n  ", "x")."""

    overhead: tuple[int, int] | tuple[int, int, int, str] | None = (3, 4, 21, "\n")
    asked: int = 0

    def count_tokens(self, texts: list[str]) -> list[int]:
        self.calls.append(texts)
        return [len(re.findall(r"\s+|\w+|[^\w\s]", text)) for text in texts]

    def chat_overhead(self) -> tuple[int, int] | tuple[int, int, int, str]:
        self.asked += 1
        return super().chat_overhead()


def test_a_message_is_counted_with_the_text_before_it_and_the_default_system_prompt() -> None:
    backend = TemplateBackend()
    counter = counter_for("SmolLM2", backend)
    indented = [Message("user", "  x = 1")]  # 3 + "user" + ("\n  ", "x", " ", "=", " ", "1")
    assert counter.count_messages("s", indented) == Count((3 + 1 + 2) + (3 + 1 + 6) + 4, True)
    assert counter.count_messages(None, indented) == Count((3 + 1 + 6) + 4 + 21, True)
    assert counter.default_system_tokens(None, indented) == 21
    gist = Message("system", "Summary: gist", summary_of=["x"])  # stands in for a system prompt
    assert counter.count_messages(None, [gist, *indented]).tokens == (3 + 1 + 5) + 10 + 4
    assert counter.default_system_tokens(None, [gist]) == 0
    assert counter.count_messages(None, []) == Count(4, True)  # an empty request gets none
    wire = [{"role": "user", "content": "  x = 1"}]
    assert counter.count_wire(wire) == counter.count_messages(None, indented)
    fresh = TemplateBackend()  # the figures are asked for before anything is counted
    hello = [{"role": "user", "content": "hi"}]  # 3 + "user" + ("\n", "hi")
    assert counter_for("SmolLM2", fresh).count_wire(hello) == Count((3 + 1 + 2) + 4 + 21, True)


def test_a_backend_with_two_figures_has_no_prefix_and_no_default_system_prompt() -> None:
    backend = TemplateBackend(overhead=(4, 3))
    counter = counter_for("m", backend)
    assert counter.count_messages(None, [Message("user", "a b")]) == Count(4 + 1 + 3 + 3, True)


@pytest.mark.parametrize("overhead", [(3, -1), (3, 4, 21), (3, 4, "21", "\n"), (3, 4, 0, None)])
def test_figures_that_make_no_sense_give_estimates(overhead: Any) -> None:
    backend = TemplateBackend(overhead=overhead)
    counter = counter_for("m", backend)
    assert not counter.count_messages(None, [Message("user", "hi")]).exact
    assert backend.calls  # counted by the tokenizer, with ChatML's figures


def test_the_template_figures_are_asked_for_until_the_backend_can_tell() -> None:
    """While the model loads (or its process is being replaced) counts are estimates, cached
    nowhere; once the backend tells its figures, they are exact and it is not asked again."""
    backend = TemplateBackend(overhead=None)
    counter = counter_for("m", backend)
    history = [Message("user", "one two")]
    assert not counter.count_messages(None, history).exact
    assert not counter.count_messages(None, history).exact
    backend.overhead = (3, 4, 21, "\n")
    assert counter.count_messages(None, history) == Count(3 + 1 + 4 + 4 + 21, True)
    asked = backend.asked
    counter.count_messages(None, [*history, Message("assistant", "three")])
    counter.count_text("four")
    assert backend.asked == asked


def test_a_counter_does_not_keep_its_backend_alive() -> None:
    """The memo holds counters for as long as their backend lives; a counter holds its backend
    weakly, so a dropped backend (and the embedded model's process) is freed."""
    backend = TemplateBackend()
    key = id(backend)
    counter = counter_for("m", backend)
    assert counter.count_messages(None, [Message("user", "hi")]).exact
    freed = weakref.ref(backend)
    del backend
    gc.collect()
    assert freed() is None
    assert key not in tokens._memos
    assert not counter.count_messages(None, [Message("user", "new words")]).exact


# --- estimates and calibration -------------------------------------------------------------


def test_estimates_are_utf8_bytes_over_four() -> None:
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("abcdefghi") == 3
    assert estimate_tokens("お誕生日") == 3  # 12 bytes
    assert estimate_tokens("") == 0
    counter = EstimatingCounter("llama3")
    assert counter.count_text("abcdefgh") == Count(2, False)


def test_calibration_scales_estimates_by_the_reported_ratio() -> None:
    counter = EstimatingCounter("llama3")
    counter.calibrate(100, 150)
    counter.calibrate(100, 150)
    assert counter.ratio == 1.5
    assert counter.count_text("a" * 400) == Count(150, False)
    counter.calibrate(0, 10)  # nothing estimated: ignored
    counter.calibrate(10, -1)  # nonsense from a server: ignored
    assert counter.ratio == 1.5
    counter.calibrate(10, 100_000)
    assert counter.ratio == 4.0  # bounded


def test_observed_prompts_anchor_later_counts() -> None:
    counter = EstimatingCounter("llama3")
    history = [Message("user", "a" * 400), Message("assistant", "b" * 400)]
    raw = counter.count_messages("sys", history).tokens
    counter.observe("sys", history, prompt_tokens=2 * raw)
    assert counter.ratio == 2.0
    assert counter.count_messages("sys", history) == Count(2 * raw, False)
    question = Message("user", "c" * 40)
    added = 3 + 1 + 10  # per message, the role, 40 bytes / 4
    assert counter.count_messages("sys", [*history, question]) == Count(2 * raw + 2 * added, False)
    # Another system prompt: the anchor does not apply; the ratio still does.
    other = counter.count_messages("other", history)
    assert other.tokens == round(EstimatingCounter("x").count_messages("other", history).tokens * 2)
