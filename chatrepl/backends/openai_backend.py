"""The OpenAI SDK backend: Chat Completions and legacy Completions on any compatible server.

`openai` costs ~0.4 s to import, so it is imported (and the client built) in a background
thread started by `prepare()`, while the person types their first message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from chatrepl.backends.base import (
    ChatRequest,
    CompletionRequest,
    Delta,
    Finish,
    Reply,
    Request,
    TextDelta,
    Usage,
)
from chatrepl.backends.errors import describe_api_error, is_transport_error
from chatrepl.config import Settings
from chatrepl.errors import BackendError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Servers such as llama.cpp's or Ollama's need no key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"
# llama.cpp's server answers a prompt longer than its context with an empty 200 stream.
UNFINISHED = (
    "the server closed the stream before the reply finished (no finish_reason); "
    "some servers do this when the prompt exceeds the model's context window"
)


class OpenAIBackend:
    """Replies from the official SDK's OpenAI or AzureOpenAI client."""

    name = "openai"
    supports_suffix = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._error: BaseException | None = None
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        """The endpoint replies come from."""
        if self.settings.uses_azure:
            return f"{self.settings.azure_endpoint} (Azure OpenAI)"
        return self.settings.base_url or DEFAULT_BASE_URL

    def prepare(self) -> None:
        """Import openai and build the client in a background thread."""
        with self._lock:
            if self._loader is None:
                self._loader = threading.Thread(
                    target=self._load, name="openai-client", daemon=True
                )
                self._loader.start()

    def client(self) -> Any:
        """The SDK client, waiting for the background load if it is still running."""
        self.prepare()
        assert self._loader is not None
        self._loader.join()
        if self._error is not None:
            raise BackendError(f"cannot set up the OpenAI client: {self._error}")
        return self._client

    def stream(self, request: Request) -> Iterator[Delta]:
        """Yield text, finish reason and usage as the server streams them."""
        client = self.client()
        finished = False
        try:
            with self._create(client, request, stream=True) as chunks:
                for chunk in chunks:
                    for delta in _chunk_deltas(chunk):
                        finished = finished or isinstance(delta, Finish)
                        yield delta
        except Exception as error:
            raise self._backend_error(error) from error
        if not finished:
            raise BackendError(UNFINISHED)

    def respond(self, request: Request) -> Reply:
        """The whole reply in one response."""
        client = self.client()
        try:
            response = self._create(client, request, stream=False)
        except Exception as error:
            raise self._backend_error(error) from error
        choice = response.choices[0]
        text = choice.message.content if isinstance(request, ChatRequest) else choice.text
        return Reply(
            text=text or "",
            finish_reason=choice.finish_reason,
            usage=_usage(response.usage),
            raw=response.model_dump(mode="json", exclude_unset=True),
        )

    def list_models(self) -> list[str]:
        """Model ids from the server's /models."""
        client = self.client()
        try:
            return sorted(model.id for model in client.models.list())
        except Exception as error:
            raise self._backend_error(error) from error

    def _load(self) -> None:
        try:
            self._client = build_client(self.settings)
        except Exception as error:  # reported by client(), in the thread that needs it
            self._error = error

    def _create(self, client: Any, request: Request, stream: bool) -> Any:
        if isinstance(request, ChatRequest):
            return client.chat.completions.create(**chat_arguments(request, stream))
        return client.completions.create(**completion_arguments(request, stream))

    def _backend_error(self, error: Exception) -> Exception:
        import openai

        if isinstance(error, BackendError):
            return error
        if isinstance(error, openai.APIError) or is_transport_error(error):
            return BackendError(describe_api_error(error, self.describe()))
        return error


def build_client(settings: Settings) -> Any:
    """The SDK client the settings ask for: AzureOpenAI when an Azure endpoint is set."""
    import openai

    common = {"max_retries": settings.max_retries, "timeout": settings.timeout}
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
    """Keyword arguments for chat.completions.create."""
    arguments: dict[str, Any] = {"model": request.model, "messages": request.messages}
    if stream:
        arguments.update(stream=True, stream_options={"include_usage": True})
    if request.json_mode:
        arguments["response_format"] = {"type": "json_object"}
    if request.max_tokens is not None:
        arguments["max_tokens"] = request.max_tokens
    return arguments


def completion_arguments(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    """Keyword arguments for completions.create; max_tokens is always sent (servers default 16)."""
    arguments: dict[str, Any] = {
        "model": request.model,
        "prompt": request.prompt,
        "max_tokens": request.max_tokens,
    }
    if stream:
        arguments.update(stream=True, stream_options={"include_usage": True})
    if request.suffix:
        arguments["suffix"] = request.suffix
    return arguments


def _chunk_deltas(chunk: Any) -> Iterator[Delta]:
    for choice in chunk.choices or []:
        text = choice.delta.content if hasattr(choice, "delta") else choice.text
        if text:
            yield TextDelta(text)
        if choice.finish_reason:
            yield Finish(choice.finish_reason)
    usage = _usage(getattr(chunk, "usage", None))
    if usage is not None:
        yield usage


def _usage(usage: Any) -> Usage | None:
    if usage is None or usage.total_tokens is None:
        return None
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, usage.total_tokens)
