"""The fake server, exercised through the real openai SDK, and the OpenAPI request validator."""

from __future__ import annotations

import threading
import time
from typing import Any

import jsonschema
import openai
import pytest

from tests.conftest import ChatReplEnv, spec_errors
from tests.fakeserver import FakeOpenAI, Recorded
from tests.openapi_schema import translate, validate_request

CHAT = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def client(fake_server: FakeOpenAI) -> openai.OpenAI:
    """A real SDK client pointed at the fake server, without retries."""
    return openai.OpenAI(base_url=fake_server.base_url, api_key="sk-test", max_retries=0)


def stream_chat(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    """Stream a chat reply to CHAT and return all chunks."""
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=CHAT, stream=True, **kwargs
    ) as stream:
        return list(stream)


def chat_text(chunks: list[Any]) -> str:
    """Reassemble the streamed chat text."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ------------------------------------------------------------------------------- chat


def test_streamed_chat_with_usage(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    chunks = stream_chat(client, stream_options={"include_usage": True})
    first, finish, last = chunks[0], chunks[-2], chunks[-1]
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chat_text(chunks) == "Echo: hello there"
    assert [c.choices[0].delta.content for c in chunks[1:4]] == ["Echo", ": he", "llo "]
    assert fake_server.last("/chat/completions").body["stream_options"] == {"include_usage": True}


def test_streamed_chat_without_usage(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    fake_server.reply = "a set reply"
    chunks = stream_chat(client)
    assert all(c.usage is None and len(c.choices) == 1 for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chat_text(chunks) == "a set reply"


def test_no_usage_never_sends_usage(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    fake_server.no_usage = True
    chunks = stream_chat(client, stream_options={"include_usage": True})
    assert all(c.usage is None and c.choices for c in chunks)
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert whole.usage is None


def test_queue_then_reply_then_default(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    fake_server.queue("first", finish_reason="length")
    fake_server.queue("second")
    fake_server.chunk_size = 2
    one = stream_chat(client)
    assert chat_text(one) == "first" and one[-1].choices[0].finish_reason == "length"
    assert [c.choices[0].delta.content for c in one[1:4]] == ["fi", "rs", "t"]
    assert chat_text(stream_chat(client)) == "second"
    assert chat_text(stream_chat(client)) == "Echo: hello there"


def test_non_streamed_chat(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    messages = [{"role": "system", "content": "be brief"}, *CHAT]
    reply = client.chat.completions.create(model="test-model", messages=messages, max_tokens=None)
    assert reply.object == "chat.completion" and reply.model == "test-model"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert fake_server.last("/chat/completions").body["messages"] == messages


# ------------------------------------------------------------------------------- completions


def test_streamed_completion_with_suffix(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    with client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="def add(a, b):",
        suffix="\n\nprint(add(1, 2))",
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == " and then b):"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    body = fake_server.last("/completions").body
    assert body["suffix"] == "\n\nprint(add(1, 2))" and body["max_tokens"] == 32


def test_non_streamed_completion(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    fake_server.reply = " world"
    reply = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hello")
    assert reply.object == "text_completion" and reply.choices[0].text == " world"
    assert reply.usage is not None


def test_last_and_bodies_tell_chat_from_completions(
    client: openai.OpenAI, fake_server: FakeOpenAI
) -> None:
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="legacy")
    client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert fake_server.last("/completions").body["prompt"] == "legacy"
    assert fake_server.last("/chat/completions").body["messages"] == CHAT
    assert len(fake_server.bodies("/completions")) == 1
    assert len(fake_server.bodies("")) == 2
    rec = fake_server.last()
    assert isinstance(rec, Recorded) and rec.method == "POST"
    assert rec.headers["authorization"] == "Bearer sk-test"
    with pytest.raises(LookupError):
        fake_server.last("/embeddings")


# ------------------------------------------------------------------------------- models


def test_models_list(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["gpt-4o-mini", "gpt-3.5-turbo-instruct", "test-model"]
    fake_server.models = ["only-one"]
    model = client.models.list().data[0]
    assert (model.id, model.object, model.created, model.owned_by) == (
        "only-one",
        "model",
        0,
        "test",
    )
    assert client.models.retrieve("only-one").id == "only-one"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing")


# ------------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (401, openai.AuthenticationError, "invalid_api_key"),
        (404, openai.NotFoundError, "model_not_found"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, None),
        (400, openai.BadRequestError, "context_length_exceeded"),
    ],
)
def test_fail_openai_style(
    client: openai.OpenAI, fake_server: FakeOpenAI, status: int, error: type, code: str | None
) -> None:
    fake_server.fail(status)
    with pytest.raises(error) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    assert info.value.status_code == status and info.value.code == code
    assert info.value.body["message"] in str(info.value)
    # One-shot: the next request succeeds.
    assert chat_text(stream_chat(client)) == "Echo: hello there"


def test_fail_custom_message_and_model_in_default(
    client: openai.OpenAI, fake_server: FakeOpenAI
) -> None:
    fake_server.fail(500, "the model exploded")
    with pytest.raises(openai.InternalServerError, match="the model exploded"):
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x")
    fake_server.fail(404)
    with pytest.raises(openai.NotFoundError, match="`no-such-model` does not exist"):
        client.chat.completions.create(model="no-such-model", messages=CHAT)


def test_fail_detail_style(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    fake_server.fail(404, "Model not found: llama", style="detail")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="llama", messages=CHAT)
    assert isinstance(info.value, openai.NotFoundError)
    assert info.value.body == {"detail": "Model not found: llama"}
    assert info.value.code is None


def test_fail_persistent_path_and_retry_after(fake_server: FakeOpenAI) -> None:
    fake_server.fail(503, persistent=True, retry_after=0.01, path="/models")
    retrying = openai.OpenAI(base_url=fake_server.base_url, api_key="sk-test", max_retries=2)
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        retrying.models.list()
    assert time.monotonic() - started < 2
    assert [r.path for r in fake_server.requests] == ["/v1/models"] * 3
    retrying.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # not affected
    fake_server.clear_faults()
    assert retrying.models.list().data


def test_api_key_check(client: openai.OpenAI, fake_server: FakeOpenAI) -> None:
    fake_server.api_key = "sk-other"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_drop_mid_stream_raises_connection_error(
    client: openai.OpenAI, fake_server: FakeOpenAI
) -> None:
    fake_server.reply = "a fairly long reply that will be cut off"
    fake_server.drop_after(3)
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=CHAT, stream=True
        ):
            received.append(chunk)
    assert chat_text(received) == "a fairly long reply that will be cut off"[:8]
    assert all(c.choices[0].finish_reason is None for c in received)


def test_drop_before_a_non_streamed_response(
    client: openai.OpenAI, fake_server: FakeOpenAI
) -> None:
    fake_server.drop_after(0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)


def test_client_closing_slow_stream_is_noticed(
    client: openai.OpenAI, fake_server: FakeOpenAI
) -> None:
    fake_server.delay = 0.05
    fake_server.reply = "x" * 400  # 100 chunks: 5 s if the server never noticed
    started = time.monotonic()
    with client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True) as s:
        for index, _ in enumerate(s):
            if index == 3:
                break
    assert fake_server.cancelled_event.wait(2)
    assert fake_server.cancelled == 1
    assert time.monotonic() - started < 1.5


def test_stop_with_a_stream_in_flight_is_prompt() -> None:
    server = FakeOpenAI().start()
    server.delay = 10
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    next(iter(stream))
    before = threading.active_count()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    assert threading.active_count() < before
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    assert server.errors == [] and server.cancelled == 0


def test_context_manager_and_port() -> None:
    with FakeOpenAI(models=["m"]) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        assert [m.id for m in client.models.list()] == ["m"]
    with pytest.raises(RuntimeError):
        _ = server.port


def test_unknown_url_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        client.embeddings.create(model="text-embedding-3-small", input="x")


# ------------------------------------------------------------------------------- spec validation

VALID_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
VALID_COMPLETION = {
    "model": "gpt-3.5-turbo-instruct",
    "prompt": "def f():",
    "suffix": "\nreturn 1",
    "max_tokens": 16,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_validate_accepts_valid_requests() -> None:
    validate_request("/v1/chat/completions", VALID_CHAT)
    validate_request("/v1/chat/completions", {**VALID_CHAT, "stream": True, "max_tokens": None})
    validate_request("/v1/completions", VALID_COMPLETION)
    validate_request("/v1/models", {"anything": "goes"})  # not a validated endpoint


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": VALID_CHAT["messages"]}),
        ("/v1/chat/completions", {**VALID_CHAT, "messages": "hi"}),
        ("/v1/chat/completions", {**VALID_CHAT, "messages": [{"role": "wizard", "content": "x"}]}),
        ("/v1/chat/completions", {**VALID_CHAT, "temperature": 7}),
        ("/v1/completions", {"prompt": "x"}),
        ("/v1/completions", {**VALID_COMPLETION, "max_tokens": "16"}),
    ],
)
def test_validate_rejects_invalid_requests(path: str, body: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_request(path, body)


def test_translate_nullable() -> None:
    schema = translate({"type": "integer", "nullable": True, "enum": [1, 2]})
    jsonschema.validate(None, schema)
    jsonschema.validate(2, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(3, schema)
    prop = translate({"properties": {"nullable": {"type": "string"}}})
    assert prop == {"properties": {"nullable": {"type": "string"}}}
    exclusive = translate({"type": "number", "minimum": 0, "exclusiveMinimum": True})
    assert exclusive == {"type": "number", "exclusiveMinimum": 0}


def test_spec_errors_reports_bad_recorded_requests() -> None:
    good = Recorded("POST", "/v1/chat/completions", {}, VALID_CHAT)
    bad = Recorded("POST", "/v1/chat/completions", {}, {"model": "m", "messages": []})
    unparsable = Recorded("POST", "/v1/completions", {}, None)
    get = Recorded("GET", "/v1/models", {}, None)
    problems = spec_errors([good, bad, unparsable, get])
    assert len(problems) == 2 and "messages" in problems[0]


DIRTY = (
    "CHATREPL_MODEL",
    "CHATREPL_COMPLETION_MODEL",
    "CHATREPL_BACKEND",
    "CHATREPL_SYSTEM",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "OPENAI_API_VERSION",
    "NO_COLOR",
)


@pytest.fixture
def dirty_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a user whose shell sets everything chatrepl_env must clear."""
    for name in DIRTY:
        monkeypatch.setenv(name, "from-the-user")
    monkeypatch.setenv("CHATREPL_HOME", "/nonexistent/user/home")


def test_chatrepl_env_isolates(
    dirty_env: None, chatrepl_env: ChatReplEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = chatrepl_env.env
    assert env["CHATREPL_HOME"] == str(chatrepl_env.home) and chatrepl_env.home.is_dir()
    assert env["OPENAI_BASE_URL"] == chatrepl_env.server.base_url
    assert env["OPENAI_API_KEY"] == "sk-test" and env["CHATREPL_MAX_RETRIES"] == "0"
    assert not [name for name in DIRTY if name in env]
    monkeypatch.setenv("NO_COLOR", "1")
    assert chatrepl_env.env["NO_COLOR"] == "1"
