"""How llama.cpp's OpenAI-compatible server (llama-cpp-python) differs from OpenAI, as observed.

Each test pins one difference through the real openai SDK, so a change in the server shows up here
before it surprises the OpenAI backend.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import openai
import pytest

if TYPE_CHECKING:
    from tests.llama_server import LlamaServer

# Temporary: the lead moves this line to tests/conftest.py (then delete it here).

HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def client(llama_server: LlamaServer) -> Any:
    """An SDK client for the session's llama.cpp server; no retries, so errors show at once."""
    return openai.OpenAI(base_url=llama_server.base_url, api_key="sk-none", max_retries=0)


def test_the_models_list_holds_the_alias(client: Any, llama_server: LlamaServer) -> None:
    assert llama_server.model in [model.id for model in client.models.list()]


def test_streamed_chat_never_sends_a_usage_chunk_even_when_asked(client: Any) -> None:
    # OpenAI ends with a chunk whose `choices` is [] and `usage` is set; llama.cpp ignores
    # stream_options: every chunk has one choice and usage None, the last one the finish_reason.
    with client.chat.completions.create(
        model="smollm2",
        messages=HELLO,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    assert all(chunk.usage is None for chunk in chunks)
    assert all(len(chunk.choices) == 1 for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}


def test_any_model_name_is_accepted_and_echoed(client: Any) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-no-such-model", messages=HELLO, max_tokens=3
    )
    assert reply.model == "gpt-4o-no-such-model"
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0


def test_completions_without_max_tokens_stop_at_16_tokens(client: Any) -> None:
    reply = client.completions.create(
        model="smollm2", prompt="Here is a long essay about the history of Rome.\n\n"
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 16


def test_an_invalid_field_is_a_500_with_an_openai_shaped_error(client: Any) -> None:
    # Request validation errors are 500 internal_server_error (OpenAI: 400 invalid_request_error);
    # the body is OpenAI-shaped {"error": {...}} and the message embeds pydantic's error list.
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="smollm2", messages=HELLO, max_tokens="many")
    error = caught.value
    assert error.status_code == 500
    assert set(error.response.json()) == {"error"}
    assert error.body == error.response.json()["error"]
    assert set(error.body) == {"message", "type", "param", "code"}
    assert error.body["type"] == "internal_server_error"
    assert error.body["code"] is None
    assert "validation error" in error.body["message"]
    assert "max_tokens" in error.body["message"]


def test_an_unknown_route_is_a_404_with_fastapis_detail_body(client: Any) -> None:
    # {"detail": ...} comes from FastAPI for routes the server lacks, e.g. GET /models/{id}.
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("smollm2")
    assert caught.value.status_code == 404
    assert caught.value.body == {"detail": "Not Found"}
    assert caught.value.response.json() == {"detail": "Not Found"}


def test_a_prompt_over_the_context_window_is_a_400_context_length_exceeded(client: Any) -> None:
    too_long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=too_long, max_tokens=2)
    body = caught.value.body
    assert caught.value.status_code == 400
    assert body["code"] == "context_length_exceeded"
    assert body["type"] == "invalid_request_error"
    assert "maximum context length is 2048 tokens" in body["message"]


def test_closing_a_stream_midway_leaves_the_server_serving(client: Any) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_tokens=400,
        stream=True,
    )
    with stream:
        for index, _chunk in enumerate(stream):
            if index == 3:
                break
    started = time.monotonic()
    reply = client.chat.completions.create(model="smollm2", messages=HELLO, max_tokens=3)
    assert reply.choices[0].finish_reason in {"stop", "length"}
    assert time.monotonic() - started < 5.0
