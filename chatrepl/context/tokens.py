"""Token counts of what a chat request sends: exact where chatrepl has the model's tokenizer.

- OpenAI models: tiktoken with the encodings chatrepl ships (`encodings.py`) and the chat
  format's overhead as OpenAI documents it (3 tokens a message, 1 more for a name, 3 priming the
  reply): exact. Tool calls, tool results and tool definitions follow OpenAI's cookbook
  approximation (their wire format is not documented) and are marked estimated.
- A backend that tokenizes (the embedded model: llama.cpp's own tokenizer, and what its chat
  template adds, measured by the backend): exact.
- Any other model: UTF-8 bytes / 4, calibrated by the prompt_tokens the server reported for
  earlier turns: always an estimate, shown with `~`.

Each counter caches every message's count under its id and a hash of what is sent for it, so a
long session is counted once and a later turn counts only its new messages. tiktoken is
imported only when an OpenAI model's text is first counted.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, Protocol

from chatrepl.backends.base import ToolSpec
from chatrepl.backends.wire import wire_message
from chatrepl.context.encodings import (
    O200K,
    EncodingError,
    encoding_for_model,
    is_loaded,
    load_encoding,
)
from chatrepl.conversation.messages import Message
from chatrepl.errors import ChatReplError

# OpenAI's rule of thumb is 4 characters of English a token; counting UTF-8 bytes instead keeps
# the same figure for English and code, and does not undercount CJK text and emoji 3-4 times
# (a CJK character is 3 bytes and about one token).
BYTES_PER_TOKEN = 4
IMAGE_TOKENS = 765  # an image, about: what OpenAI charges for a 1024x1024 one in high detail
_CACHE_LIMIT = 200_000  # cached messages per counter; past it the cache starts afresh
_RATIO_BOUNDS = (0.25, 4.0)  # a calibration never moves an estimate further than this


@dataclass(frozen=True)
class Count:
    """A number of tokens, and whether it is exact (else shown with `~`)."""

    tokens: int
    exact: bool

    def __add__(self, other: Count) -> Count:
        return Count(self.tokens + other.tokens, self.exact and other.exact)

    def __str__(self) -> str:
        return f"{self.tokens:,}" if self.exact else f"~{self.tokens:,}"


@dataclass(frozen=True)
class ChatFormat:
    """Tokens a chat format adds around the texts of a request."""

    per_message: int  # around each message (its role's own tokens are counted as text)
    per_reply: int  # priming the reply, once a request
    per_name: int = 1  # a message with a `name`
    # Between a role and its content: counted with the content, since a tokenizer merges it with
    # the content's leading whitespace.
    content_prefix: str = ""
    default_system: int = 0  # the system message a template adds to a request without one

    def default_for(self, system: str | None, first_role: str | None) -> int:
        """The default system message's tokens, if a request that begins so gets it."""
        if not self.default_system or system or first_role in (None, "system"):
            return 0
        return self.default_system


OPENAI_CHAT = ChatFormat(per_message=3, per_reply=3)  # <|start|>ROLE<|message|>TEXT<|end|>
CHATML = ChatFormat(per_message=4, per_reply=3)  # <|im_start|>ROLE\nTEXT<|im_end|>\n


@dataclass(frozen=True)
class ToolFormat:
    """Tokens tool definitions add, by OpenAI cookbook's "How to count tokens" (fitted, not
    documented: an approximation)."""

    per_function: int
    per_properties: int
    per_property: int
    per_enum: int
    per_enum_item: int
    closing: int


O200K_TOOLS = ToolFormat(7, 3, 3, -3, 3, 12)
CL100K_TOOLS = ToolFormat(10, 3, 3, -3, 3, 12)


class TokenCounter(Protocol):
    """Counts what a request to one model sends."""

    model: str
    exact: bool  # False: every count is an estimate

    def count_text(self, text: str) -> Count:
        """Tokens in a text (a prompt, a paste, a reply)."""
        ...

    def count_messages(self, system: str | None, messages: Sequence[Message]) -> Count:
        """Tokens a chat request with this system prompt and these messages takes."""
        ...

    def default_system_tokens(self, system: str | None, messages: Sequence[Message]) -> int:
        """Tokens of the system message the model's chat template adds to this request, which
        has none of its own (0 for most models); `count_messages` includes them."""
        ...

    def count_tools(self, tools: Sequence[ToolSpec]) -> Count:
        """Tokens the tool definitions add to a request."""
        ...

    def observe(self, system: str | None, messages: Sequence[Message], prompt_tokens: int) -> None:
        """Learn from the prompt_tokens a server reported for a request that sent these."""
        ...

    def prepare(self) -> None:
        """Start any slow loading in the background."""
        ...


class TokenizingBackend(Protocol):
    """A backend that can count its model's tokens (capabilities.token_counting).

    It may also have `chat_overhead()`: what its chat template adds, as `ChatFormat`'s
    `(per_message, per_reply)` or `(per_message, per_reply, default_system, content_prefix)`
    (raising while it cannot tell). Until it tells, counts use ChatML's figures, marked estimated.
    """

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens in each text, as the model tokenizes it (no BOS, special tokens parsed)."""
        ...


def estimate_tokens(text: str) -> int:
    """About how many tokens a text is: its UTF-8 bytes / 4, rounded up."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return -(-size // BYTES_PER_TOKEN)


def message_key(message: Message) -> tuple[str, int]:
    """A message's cache key: its id and a hash of everything sent for it (its role, set when
    it is made, never changes)."""
    if message.attachments or message.tool_calls or message.tool_call_id:
        attachments = tuple((a.name, a.text, a.data) for a in message.attachments)
        calls = tuple((c.name, c.arguments) for c in message.tool_calls)
        return message.id, hash((message.content, message.tool_call_id, attachments, calls))
    return message.id, hash(message.content)


def _keys(system: str | None, messages: Sequence[Message]) -> list[tuple[str, int]]:
    """The cache keys of a request's system prompt and messages (the hot path of a later turn:
    plain messages are keyed inline)."""
    keys = [("", hash(system))] if system else []  # no message has an empty id
    keys += [
        (m.id, hash(m.content))
        if not (m.attachments or m.tool_calls or m.tool_call_id)
        else message_key(m)
        for m in messages
    ]
    return keys


# A message as counted: its role, its texts, how many names it has, whether counting is exact.
_Parts = tuple[str, list[str], int, bool]


def message_parts(item: Message | str) -> _Parts:
    """What of a message (or a system prompt) becomes tokens, as a backend sends it."""
    if isinstance(item, str):
        return "system", [item], 0, True
    if item.attachments or item.tool_calls or item.role == "tool":
        return wire_parts(wire_message(item))
    return item.role, [item.content], 0, True


def wire_parts(wire: Mapping[str, Any]) -> _Parts:
    """What of an API message becomes tokens; tool calls and tool results are approximated."""
    texts = [
        value
        for key, value in wire.items()
        if isinstance(value, str) and key not in ("role", "tool_call_id")
    ]
    parts = wire.get("content") if isinstance(wire.get("content"), list) else []
    texts += [str(part.get("text", "")) for part in parts if part.get("type") == "text"]
    images = sum(part.get("type") == "image_url" for part in parts)
    texts += ["image " * IMAGE_TOKENS] * images  # about what a vision model charges for one
    calls = wire.get("tool_calls") or ()
    for call in calls:
        function = call.get("function") or {}
        texts += [str(function.get("name", "")), str(function.get("arguments", ""))]
    exact = not calls and not images and wire.get("role") != "tool"
    return str(wire.get("role", "")), texts, int("name" in wire), exact


_CONTENT = attrgetter("content")
_TOOL_CALLS = attrgetter("tool_calls")


@dataclass(frozen=True)
class _Request:
    """A request as counted: its messages (and their contents then), keys, entries, total."""

    system: str | None
    messages: list[Message]
    contents: list[str]
    calls: list[list[Any]]
    keys: list[tuple[str, int]]
    entries: list[tuple[int, bool]]
    tokens: int  # of the messages, without the reply's priming
    exact: bool

    @classmethod
    def of(
        cls,
        system: str | None,
        messages: Sequence[Message],
        keys: list[tuple[str, int]],
        entries: list[tuple[int, bool]],
    ) -> _Request:
        """A request counted from scratch."""
        contents, calls = list(map(_CONTENT, messages)), list(map(_TOOL_CALLS, messages))
        tokens, exact = sum(map(itemgetter(0), entries)), all(map(itemgetter(1), entries))
        return cls(system, list(messages), contents, calls, keys, entries, tokens, exact)

    def extended(
        self, added: Sequence[Message], keys: list[tuple[str, int]], entries: list[tuple[int, bool]]
    ) -> _Request:
        """This request with messages added (their keys and entries given)."""
        return _Request(
            self.system,
            self.messages + list(added),
            self.contents + list(map(_CONTENT, added)),
            self.calls + list(map(_TOOL_CALLS, added)),
            self.keys + keys,
            self.entries + entries,
            self.tokens + sum(map(itemgetter(0), entries)),
            self.exact and all(map(itemgetter(1), entries)),
        )

    def extended_by(self, system: str | None, messages: Sequence[Message]) -> bool:
        """Whether a request begins with this one: the same system prompt and message objects,
        whose contents and tool calls have not been replaced since (compared as objects, at C
        speed: this is what keeps a later turn of a long session cheap)."""
        count = len(self.messages)
        if system != self.system or len(messages) < count:
            return False
        prefix = list(messages[:count])
        return (
            prefix == self.messages
            and list(map(_CONTENT, prefix)) == self.contents
            and list(map(_TOOL_CALLS, prefix)) == self.calls
        )


class CachedCounter:
    """Counts chat requests message by message, caching each message's count.

    A message's count is cached under its id and a hash of what is sent for it; a request that
    extends the last one counted (the same message objects, their contents and tool calls not
    replaced) only looks at the messages added. Attachments are set when a message is made, and
    no list of a message is changed in place once it has been counted.

    Subclasses say how texts become tokens (`_count_texts`), and may change the formats.
    """

    exact: bool = True
    chat_format: ChatFormat = OPENAI_CHAT
    tool_format: ToolFormat = O200K_TOOLS

    def __init__(self, model: str, cache: dict[Hashable, tuple[int, bool]] | None = None) -> None:
        self.model = model
        self._cache: dict[Hashable, tuple[int, bool]] = {} if cache is None else cache
        self._roles: dict[str, int] = {}
        self._last: _Request | None = None

    def _count_texts(self, texts: list[str]) -> list[int] | None:
        """Tokens in each text, or None when they cannot be counted now (estimated instead)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Nothing to load."""

    def observe(self, system: str | None, messages: Sequence[Message], prompt_tokens: int) -> None:
        """Exact counters need no calibration."""

    def count_text(self, text: str) -> Count:
        """Tokens in a text."""
        counts = self._count_texts([text])
        if counts is None:
            return Count(estimate_tokens(text), False)
        return Count(counts[0], self.exact)

    def count_messages(self, system: str | None, messages: Sequence[Message]) -> Count:
        """Tokens a chat request with this system prompt and these messages takes."""
        request = self._counted(system, messages)
        tokens = request.tokens + self.chat_format.per_reply
        tokens += self.default_system_tokens(system, messages)
        return Count(tokens, self.exact and request.exact)

    def default_system_tokens(self, system: str | None, messages: Sequence[Message]) -> int:
        """Tokens of the system message the chat template adds to a request without one."""
        return self.chat_format.default_for(system, messages[0].role if messages else None)

    def count_wire(self, messages: Sequence[Mapping[str, Any]]) -> Count:
        """Tokens of API-shaped messages (dicts as the Chat Completions API takes them)."""
        entries, _ = self._count_parts([wire_parts(wire) for wire in messages])
        first_role = str(messages[0].get("role")) if messages else None
        return self._total(entries, self.chat_format.default_for(None, first_role))

    def count_tools(self, tools: Sequence[ToolSpec]) -> Count:
        """Tokens the tool definitions add: the cookbook's approximation, never exact."""
        if not tools:
            return Count(0, True)
        lines, fixed = tool_lines(tools, self.tool_format)
        counts = self._count_texts(lines) or [estimate_tokens(line) for line in lines]
        return Count(fixed + sum(counts), False)

    def _total(self, entries: list[tuple[int, bool]], default_system: int = 0) -> Count:
        tokens = sum(map(itemgetter(0), entries)) + self.chat_format.per_reply + default_system
        return Count(tokens, self.exact and all(map(itemgetter(1), entries)))

    def _counted(self, system: str | None, messages: Sequence[Message]) -> _Request:
        """The request's keys and per-message (tokens, exact): when it extends the last request
        counted, only the messages added since are looked at."""
        last = self._last
        if last is not None and last.extended_by(system, messages):
            added = messages[len(last.messages) :]
            keys = _keys(None, added)
            entries, cacheable = self._entries(keys, None, added)
            request = last.extended(added, keys, entries)
        else:
            keys = _keys(system, messages)
            entries, cacheable = self._entries(keys, system, messages)
            request = _Request.of(system, messages, keys, entries)
        self._last = request if cacheable else None
        return request

    def _entries(
        self, keys: list[tuple[str, int]], system: str | None, messages: Sequence[Message]
    ) -> tuple[list[tuple[int, bool]], bool]:
        """Each message's (tokens, exact), counting only those not cached yet; and whether
        all of them could be cached (False: some are estimates a later count may improve)."""
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        missing = [index for index, key in enumerate(keys) if key not in cache]
        if not missing:
            return list(map(cache.__getitem__, keys)), True
        items: list[Message | str] = [system, *messages] if system else list(messages)
        counted, cacheable = self._count_parts([message_parts(items[i]) for i in missing])
        fresh = dict(zip([keys[i] for i in missing], counted, strict=True))
        if not cacheable:
            return [fresh[key] if key in fresh else cache[key] for key in keys], False
        cache.update(fresh)
        return list(map(cache.__getitem__, keys)), True

    def _count_parts(self, parts: list[_Parts]) -> tuple[list[tuple[int, bool]], bool]:
        """(tokens, exact) for each message, and whether the counts may be cached. Texts and
        roles not seen before are counted in one call (one request to a tokenizing backend)."""
        roles = sorted({role for role, _, _, _ in parts} - self._roles.keys())
        prefix = self.chat_format.content_prefix
        if prefix:
            parts = [(role, _prefixed(prefix, texts), *rest) for role, texts, *rest in parts]
        flat = roles + [text for _, texts, _, _ in parts for text in texts]
        counts = self._count_texts(flat)
        counted = counts is not None
        if counts is None:
            counts = [estimate_tokens(text) for text in flat]
        role_tokens = {**self._roles, **dict(zip(roles, counts, strict=False))}
        if counted:
            self._roles = role_tokens
        form, start, entries = self.chat_format, len(roles), []
        for role, texts, names, exact in parts:
            end = start + len(texts)
            tokens = form.per_message + role_tokens[role] + names * form.per_name
            entries.append((tokens + sum(counts[start:end]), exact and counted))
            start = end
        return entries, counted


def _prefixed(prefix: str, texts: list[str]) -> list[str]:
    """A message's texts with the chat format's content prefix before the first."""
    return [prefix + texts[0], *texts[1:]] if texts else [prefix]


def tool_lines(tools: Sequence[ToolSpec], form: ToolFormat) -> tuple[list[str], int]:
    """The texts of tool definitions the cookbook counts, and the fixed tokens around them."""
    lines: list[str] = []
    fixed = form.closing
    for tool in tools:
        fixed += form.per_function
        lines.append(f"{tool.name}:{tool.description.removesuffix('.')}")
        properties = tool.parameters.get("properties")
        if not isinstance(properties, dict) or not properties:
            continue
        fixed += form.per_properties
        for name, spec in properties.items():
            spec = spec if isinstance(spec, dict) else {}
            fixed += form.per_property
            if isinstance(spec.get("enum"), list):
                fixed += form.per_enum + form.per_enum_item * len(spec["enum"])
                lines += [str(item) for item in spec["enum"]]
            description = str(spec.get("description", "")).removesuffix(".")
            lines.append(f"{name}:{spec.get('type', '')}:{description}")
    return lines, fixed


class EncodingCounter(CachedCounter):
    """Exact counts for an OpenAI model: tiktoken with the encoding chatrepl ships."""

    def __init__(
        self,
        model: str,
        encoding: str,
        encoder: Any = None,
        cache: dict[Hashable, tuple[int, bool]] | None = None,
    ) -> None:
        super().__init__(model, cache)
        self.encoding = encoding
        self.tool_format = O200K_TOOLS if encoding == O200K else CL100K_TOOLS
        self.problem: str | None = None  # why counts are estimates, when loading failed
        self._encoder = encoder

    def prepare(self) -> None:
        """Load the encoding in a background thread (once per process)."""
        if self._encoder is None and not is_loaded(self.encoding):
            threading.Thread(target=self._loaded, name="chatrepl-tokens", daemon=True).start()

    def _loaded(self) -> Any:
        """The tiktoken Encoding, or None (counts become estimates) when it cannot load."""
        if self._encoder is None and self.problem is None:
            try:
                self._encoder = load_encoding(self.encoding)
            except EncodingError as error:
                self.problem, self.exact = str(error), False
        return self._encoder

    def _count_texts(self, texts: list[str]) -> list[int] | None:
        encoder = self._loaded()
        if encoder is None:
            return None
        encode = encoder.encode_ordinary  # user text is text: "<|endoftext|>" is not special
        return [len(encode(text)) for text in texts]


class BackendCounter(CachedCounter):
    """Exact counts from the backend's own tokenizer (the embedded model's llama.cpp) and what
    its chat template adds, which the backend tells on first use.

    The backend is held weakly (a counter is remembered for as long as its backend lives, and
    must not keep it, or the embedded model's process, alive): once it is gone, counts are
    estimates. Until the backend has told its template's figures (the model is still loading,
    or its process died), counts are marked estimated and not cached.
    """

    exact = False  # until the backend tells its chat template's figures
    chat_format = CHATML  # a guess until then

    def __init__(self, model: str, backend: TokenizingBackend) -> None:
        super().__init__(model)
        self._backend = _weak(backend)

    @property
    def backend(self) -> TokenizingBackend | None:
        """The backend, or None once it has been freed."""
        return self._backend()

    def _counted(self, system: str | None, messages: Sequence[Message]) -> _Request:
        self._learn_format()
        return super()._counted(system, messages)

    def _count_texts(self, texts: list[str]) -> list[int] | None:
        self._learn_format()
        backend = self._backend()
        if backend is None:
            return None
        if not texts:
            return []
        try:
            counts = backend.count_tokens(list(texts))
        except (ChatReplError, OSError, RuntimeError, ValueError):
            return None  # the model is not loaded or its process died: estimate for now
        valid = isinstance(counts, list) and len(counts) == len(texts)
        return counts if valid and all(isinstance(n, int) and n >= 0 for n in counts) else None

    def _count_parts(self, parts: list[_Parts]) -> tuple[list[tuple[int, bool]], bool]:
        self._learn_format()  # before the format's content prefix is read
        entries, cacheable = super()._count_parts(parts)
        if self.exact:
            return entries, cacheable
        return [(tokens, False) for tokens, _ in entries], False  # the overhead is a guess

    def _learn_format(self) -> None:
        """Ask the backend for its chat template's figures, until it has told them."""
        if self.exact:
            return
        backend = self._backend()
        form = _chat_format_of(backend) if backend is not None else None
        if form is not None:
            self.chat_format, self.exact = form, True


def _weak(backend: object) -> Callable[[], Any]:
    """A weak reference to the backend; a strong one to what cannot be weakly referenced."""
    try:
        return weakref.ref(backend)
    except TypeError:
        return lambda: backend


def _chat_format_of(backend: object) -> ChatFormat | None:
    """The backend's chat template figures, when it tells sensible ones."""
    declare = getattr(backend, "chat_overhead", None)
    if not callable(declare):
        return None
    try:
        overhead = declare()
    except (ChatReplError, OSError, RuntimeError, ValueError):
        return None
    if not isinstance(overhead, tuple) or len(overhead) not in (2, 4):
        return None
    per_message, per_reply, default_system, prefix = (*overhead, 0, "")[:4]
    figures = (per_message, per_reply, default_system)
    if not all(isinstance(n, int) and n >= 0 for n in figures) or not isinstance(prefix, str):
        return None
    return ChatFormat(per_message, per_reply, content_prefix=prefix, default_system=default_system)


@dataclass(frozen=True)
class _Anchor:
    """A request the server counted: its messages' keys and the prompt_tokens it reported."""

    keys: list[tuple[str, int]]
    reported: int


class EstimatingCounter(CachedCounter):
    """Estimates for any other model: UTF-8 bytes / 4, calibrated by what the server reported.

    After `observe`, a request that begins with the observed one counts as the server's figure
    for that part plus an estimate for the messages after it; `calibrate` keeps a running ratio
    of reported to estimated tokens, applied to every estimate.
    """

    exact = False

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._estimated = 0
        self._reported = 0
        self._anchor: _Anchor | None = None

    @property
    def ratio(self) -> float:
        """Reported tokens per estimated token over the calibrated turns (1.0 before any)."""
        if not self._estimated:
            return 1.0
        low, high = _RATIO_BOUNDS
        return min(high, max(low, self._reported / self._estimated))

    def calibrate(self, sent_prompt_estimate: int, reported_prompt_tokens: int) -> None:
        """Add a turn: the uncalibrated estimate of what was sent, and what the server counted."""
        if sent_prompt_estimate > 0 and reported_prompt_tokens > 0:
            self._estimated += sent_prompt_estimate
            self._reported += reported_prompt_tokens

    def observe(self, system: str | None, messages: Sequence[Message], prompt_tokens: int) -> None:
        """Calibrate with a request's reported prompt_tokens, and anchor later counts on it."""
        if prompt_tokens <= 0:
            return
        request = self._counted(system, messages)
        self.calibrate(request.tokens + self.chat_format.per_reply, prompt_tokens)
        self._anchor = _Anchor(request.keys, prompt_tokens)

    def count_text(self, text: str) -> Count:
        """An estimate for a text."""
        return Count(round(estimate_tokens(text) * self.ratio), False)

    def count_messages(self, system: str | None, messages: Sequence[Message]) -> Count:
        """An estimate for a chat request, anchored on the last observed one when it applies."""
        request = self._counted(system, messages)
        keys, entries, anchor = request.keys, request.entries, self._anchor
        if anchor is not None and keys[: len(anchor.keys)] == anchor.keys:
            added = sum(map(itemgetter(0), entries[len(anchor.keys) :]))
            return Count(anchor.reported + round(added * self.ratio), False)
        raw = request.tokens + self.chat_format.per_reply
        return Count(round(raw * self.ratio), False)

    def _count_texts(self, texts: list[str]) -> list[int] | None:
        return [estimate_tokens(text) for text in texts]


def counts_tokens(backend: object) -> bool:
    """Whether a backend declares exact token counting and has the method for it."""
    capabilities = getattr(backend, "capabilities", None)
    able = bool(getattr(capabilities, "token_counting", False))
    return able and callable(getattr(backend, "count_tokens", None))


def new_counter(model: str, backend: object | None = None) -> TokenCounter:
    """A fresh counter for `model` served by `backend`: the backend's tokenizer when it has
    one, else the model's OpenAI encoding, else an estimate."""
    if backend is not None and counts_tokens(backend):
        return BackendCounter(model, backend)  # type: ignore[arg-type]
    encoding = encoding_for_model(model)
    if encoding is None:
        return EstimatingCounter(model)
    counter = EncodingCounter(model, encoding, cache=_encoding_caches.setdefault(encoding, {}))
    counter.prepare()
    return counter


_encoding_caches: dict[str, dict[Hashable, tuple[int, bool]]] = {}
_memos: dict[int, tuple[Any, dict[str, TokenCounter]]] = {}  # id(backend) -> (weak ref, memo)
_no_backend: dict[str, TokenCounter] = {}
_memo_lock = threading.Lock()


def counter_for(model: str, backend: object | None = None) -> TokenCounter:
    """The counter for `model` served by `backend`: the same one each time it is asked, so its
    cache and calibration last."""
    with _memo_lock:
        memo = _memo_of(backend)
        if model not in memo:
            memo[model] = new_counter(model, backend)
        return memo[model]


def _memo_of(backend: object | None) -> dict[str, TokenCounter]:
    if backend is None:
        return _no_backend
    entry = _memos.get(id(backend))
    if entry is not None and entry[0]() is backend:
        return entry[1]
    key = id(backend)
    try:
        reference = weakref.ref(backend, lambda dead: _forget(key, dead))
    except TypeError:
        return {}  # cannot tell when it dies: no memo
    _memos[key] = (reference, {})
    return _memos[key][1]


def _forget(key: int, reference: weakref.ref[Any]) -> None:
    """A backend has been freed: its counters go too. No lock: this runs wherever the last
    reference went, maybe with the memo's lock held; each dict operation is atomic."""
    entry = _memos.get(key)
    if entry is not None and entry[0] is reference:
        _memos.pop(key, None)
