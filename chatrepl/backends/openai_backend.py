"""The OpenAI SDK backend: Chat Completions and legacy Completions on any compatible server.

`openai` costs ~0.4 s to import, so it is imported (and the client built) in a background
thread started by `prepare()`, while the person types their first message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatrepl.backends import wire
from chatrepl.backends.base import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Delta,
    Finish,
    Reply,
    Request,
)
from chatrepl.backends.errors import describe_api_error, is_transport_error
from chatrepl.backends.loader import BackgroundLoad
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


class OpenAIBackend:
    """Replies from the official SDK's OpenAI or AzureOpenAI client."""

    name = "openai"
    capabilities = Capabilities(suffix=True, tools=True, streaming_usage=True)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = BackgroundLoad("openai-client", lambda: build_client(settings))

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
        finished = False
        try:
            with self._create(client, request, stream=True) as chunks:
                for chunk in chunks:
                    for delta in wire.chunk_deltas(chunk):
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
            usage=wire.usage_from(response.usage),
            raw=response.model_dump(mode="json", exclude_unset=True),
        )

    def list_models(self) -> list[str]:
        """Model ids from the server's /models."""
        client = self.client()
        try:
            return sorted(model.id for model in client.models.list())
        except Exception as error:
            raise self._backend_error(error) from error

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
