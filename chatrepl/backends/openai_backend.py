"""The OpenAI SDK backend: Chat Completions and legacy Completions on any compatible server.

`openai` costs ~0.4 s to import, so it is imported (and the client built) in a background
thread started by `prepare()`, while the person types their first message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chatrepl.backends import wire
from chatrepl.backends.base import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Delta,
    Finish,
    Notice,
    Reply,
    Request,
    TextDelta,
    ignore_notice,
)
from chatrepl.backends.errors import (
    describe_api_error,
    error_detail,
    first_line,
    is_transport_error,
)
from chatrepl.backends.loader import BackgroundLoad
from chatrepl.backends.retries import EventHooks, RetryWatch
from chatrepl.config import Settings
from chatrepl.conversation.messages import Mode
from chatrepl.errors import BackendError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Servers such as llama.cpp's or Ollama's need no key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"
# llama.cpp's server answers a prompt longer than its context with an empty 200 stream.
UNFINISHED = (
    "the server closed the stream before the reply finished (no finish_reason); "
    "some servers do this when the prompt exceeds the model's context window"
)
# More than any model writes in one reply (~250k tokens): a server that sends more is broken.
MAX_REPLY_CHARS = 1_000_000
TOO_LONG = f"the reply passed {MAX_REPLY_CHARS:,} characters; stopped reading it there"


@dataclass
class _StreamState:
    """What a stream has shown so far."""

    answered: bool = False  # the response's headers arrived
    finished: bool = False  # a finish_reason arrived
    chunks: int = 0
    choices: bool = False  # some chunk had a `choices` list

    @property
    def without_choices(self) -> bool:
        """Chunks came, none of them with `choices`: not the API's shape at all."""
        return self.chunks > 0 and not self.choices


class OpenAIBackend:
    """Replies from the official SDK's OpenAI or AzureOpenAI client."""

    name = "openai"
    capabilities = Capabilities(suffix=True, tools=True, images=True, streaming_usage=True)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.on_notice: Notice = ignore_notice
        self._retries = RetryWatch(settings.max_retries, lambda text: self.on_notice(text))
        self._model_list: dict[str, Any] | None = None  # /models, fetched once per run
        hooks = self._retries.event_hooks()
        self._client = BackgroundLoad("openai-client", lambda: build_client(settings, hooks))

    @property
    def last_retries(self) -> int:
        """How many times the SDK retried this thread's last request (for the request log)."""
        return self._retries.last_retries

    def describe(self) -> str:
        """The endpoint replies come from."""
        if self.settings.uses_azure:
            return f"{self.settings.azure_endpoint} (Azure OpenAI)"
        return self.settings.base_url or DEFAULT_BASE_URL

    def default_model(self, mode: Mode) -> str:
        """The configured chat or completion model."""
        return self.settings.model if mode == "chat" else self.settings.completion_model

    def prepare(self) -> None:
        """Import openai and build the client in a background thread."""
        self._client.start()

    def client(self) -> Any:
        """The SDK client, waiting for the background load if it is still running."""
        try:
            return self._client.result()
        except Exception as error:
            raise BackendError(f"cannot set up the OpenAI client: {error}") from error

    def stream(self, request: Request) -> Iterator[Delta]:
        """Yield text, tool calls, finish reason and usage as the server streams them."""
        client = self.client()
        state = _StreamState()
        try:
            with self._retries.announcing():
                chunks = self._create(client, request, stream=True)
            with chunks:
                state.answered = True
                if "html" in chunks.response.headers.get("content-type", "").lower():
                    raise self._web_page()
                yield from capped(_deltas(chunks, state), MAX_REPLY_CHARS)
        except Exception as error:
            raise self._backend_error(error, mid_reply=state.answered) from error
        if not state.finished:
            raise BackendError(self._no_choices() if state.without_choices else UNFINISHED)

    def respond(self, request: Request) -> Reply:
        """The whole reply in one response."""
        client = self.client()
        try:
            with self._retries.announcing():
                response = self._create(client, request, stream=False)
        except Exception as error:
            raise self._backend_error(error) from error
        choice = self._first_choice(response)
        text = choice.message.content if isinstance(request, ChatRequest) else choice.text
        if text and len(text) > MAX_REPLY_CHARS:
            raise BackendError(TOO_LONG)
        return Reply(
            text=text or "",
            finish_reason=choice.finish_reason,
            usage=wire.usage_from(response.usage),
            raw=response.model_dump(mode="json", exclude_unset=True),
        )

    def list_models(self) -> list[str]:
        """Model ids from the server's /models."""
        return sorted(self._models())

    def context_window_of(self, model: str) -> int | None:
        """The window the server reports for `model`: vLLM's `max_model_len`, llama.cpp's
        `meta.n_ctx_train`, LM Studio's `max_context_length` (OpenAI reports none)."""
        try:
            listed = self._models().get(model)
        except BackendError:
            return None
        return _reported_window(listed) if listed is not None else None

    def _models(self) -> dict[str, Any]:
        """The server's models by id, fetched once per run. Its retries are not announced: the
        REPL fetches the list in the background, where a retry line would interrupt typing."""
        if self._model_list is None:
            client = self.client()
            try:
                self._model_list = {model.id: model for model in client.models.list()}
            except Exception as error:
                raise self._backend_error(error) from error
        return self._model_list

    def _create(self, client: Any, request: Request, stream: bool) -> Any:
        if isinstance(request, ChatRequest):
            return client.chat.completions.create(**chat_arguments(request, stream))
        return client.completions.create(**completion_arguments(request, stream))

    def _first_choice(self, response: Any) -> Any:
        """The response's first choice; a page that is not the API's answer is one clear error."""
        if isinstance(response, str):  # the SDK hands back bodies that are not JSON as text
            if response.lstrip().startswith("<"):
                raise self._web_page()
            raise BackendError(f"{self.describe()} answered with something that is not JSON")
        choices = getattr(response, "choices", None)
        error = getattr(response, "error", None)
        if not choices and error:
            raise BackendError(f"the server sent an error: {first_line(error_detail(error))}")
        if not choices:
            raise BackendError(self._no_choices())
        return choices[0]

    def _web_page(self) -> BackendError:
        return BackendError(
            f"{self.describe()} answered with a web page, not the API: check the URL "
            "(OpenAI-compatible APIs usually end in /v1)"
        )

    def _no_choices(self) -> str:
        return f"{self.describe()} answered without any choices: is it an OpenAI-compatible API?"

    def _backend_error(self, error: Exception, mid_reply: bool = False) -> Exception:
        import openai

        if isinstance(error, BackendError):
            return error
        if isinstance(error, json.JSONDecodeError):
            where = "mid-reply " if mid_reply else ""
            return BackendError(f"{self.describe()} sent {where}data that is not valid JSON")
        if isinstance(error, openai.APIError) or is_transport_error(error):
            settings = self.settings
            return BackendError(
                describe_api_error(
                    error,
                    self.describe(),
                    connect_timeout=settings.connect_timeout,
                    timeout=settings.timeout,
                    mid_reply=mid_reply,
                )
            )
        return error


def _deltas(chunks: Iterable[Any], state: _StreamState) -> Iterator[Delta]:
    """The deltas of a stream's chunks, noting in `state` whether it finished."""
    for chunk in chunks:
        state.chunks += 1
        state.choices = state.choices or getattr(chunk, "choices", None) is not None
        for delta in wire.chunk_deltas(chunk):
            state.finished = state.finished or isinstance(delta, Finish)
            yield delta


def capped(deltas: Iterable[Delta], limit: int) -> Iterator[Delta]:
    """Pass deltas on until their text passes `limit` characters, then stop with an error."""
    sent = 0
    for delta in deltas:
        if isinstance(delta, TextDelta):
            room = limit - sent
            if len(delta.text) > room:
                if room:
                    yield TextDelta(delta.text[:room])
                raise BackendError(TOO_LONG)
            sent += len(delta.text)
        yield delta


def _reported_window(model: Any) -> int | None:
    extra = getattr(model, "model_extra", None) or {}
    meta = extra.get("meta") if isinstance(extra.get("meta"), dict) else {}
    for value in (extra.get("max_model_len"), extra.get("max_context_length"), meta.get("n_ctx")):
        if isinstance(value, int) and value > 0:
            return value
    value = meta.get("n_ctx_train")
    return value if isinstance(value, int) and value > 0 else None


def build_client(settings: Settings, event_hooks: EventHooks | None = None) -> Any:
    """The SDK client the settings ask for: AzureOpenAI when an Azure endpoint is set.

    `timeout` bounds every wait for the server's next byte (the first one included), so a
    stalled stream ends after it; `connect_timeout` bounds opening the connection.
    """
    import openai

    timeout = openai.Timeout(settings.timeout, connect=settings.connect_timeout)
    http_client = openai.DefaultHttpxClient(timeout=timeout, event_hooks=event_hooks or {})
    common = {"max_retries": settings.max_retries, "timeout": timeout, "http_client": http_client}
    if settings.uses_azure:
        return openai.AzureOpenAI(
            azure_endpoint=settings.azure_endpoint,
            api_key=settings.azure_api_key or settings.api_key,
            api_version=settings.api_version,
            **common,
        )
    return openai.OpenAI(
        api_key=settings.api_key or PLACEHOLDER_KEY,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        **common,
    )


def chat_arguments(request: ChatRequest, stream: bool) -> dict[str, Any]:
    """Keyword arguments for chat.completions.create: the request in the API's shape."""
    arguments: dict[str, Any] = {"model": request.model, "messages": wire.chat_messages(request)}
    if stream:
        arguments.update(stream=True, stream_options={"include_usage": True})
    if request.tools:
        arguments["tools"] = wire.tool_definitions(request.tools)
        if request.tool_choice:
            arguments["tool_choice"] = wire.tool_choice(request.tool_choice, request.tools)
    arguments.update(wire.param_arguments(request.params))
    return arguments


def completion_arguments(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    """Keyword arguments for completions.create; max_tokens is always sent (servers default 16)."""
    arguments: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
    if stream:
        arguments.update(stream=True, stream_options={"include_usage": True})
    if request.suffix:
        arguments["suffix"] = request.suffix
    params = wire.param_arguments(request.params)
    params.pop("response_format", None)
    arguments.update(params)
    return arguments
