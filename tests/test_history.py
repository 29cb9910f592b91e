"""The history builder and the OpenAI wire translation: what is sent, in the API's shape."""

from __future__ import annotations

from chatrepl.backends import wire
from chatrepl.backends.base import ChatRequest, Finish, TextDelta, ToolCallDelta, ToolSpec
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import (
    Attachment,
    GenerationParams,
    Message,
    ToolCall,
    Usage,
)
from chatrepl.engine.history import build_request, chat_history, request_params
from chatrepl.engine.turn import _merge_tool_call
from tests.openapi_schema import validate_request


def convo(*messages: Message) -> Conversation:
    conversation = Conversation(chat_model="gpt-4o-mini", completion_model="c")
    for message in messages:
        conversation.add(message)
    return conversation


def test_summarized_messages_are_replaced_by_their_summary() -> None:
    old_q, old_a = Message("user", "old q"), Message("assistant", "old a")
    summary = Message("system", "summary", summary_of=[old_q.id, old_a.id])
    old_q.summarized_by = old_a.summarized_by = summary.id
    sent = chat_history(convo(old_q, old_a, summary, Message("user", "new")))
    assert [m.content for m in sent] == ["summary", "new"]


def test_empty_replies_and_completion_turns_are_not_sent() -> None:
    sent = chat_history(
        convo(
            Message("user", "q"),
            Message("assistant", "", interrupted=True),
            Message("user", "prompt", mode="complete"),
            Message("assistant", "continued", mode="complete"),
            Message("user", "q2"),
        )
    )
    assert [m.content for m in sent] == ["q", "q2"]


def test_tool_calls_go_only_with_their_results() -> None:
    answered = Message("assistant", "", tool_calls=[ToolCall("a", "f", "{}")])
    result = Message("tool", "42", tool_call_id="a", name="f")
    unanswered = Message("assistant", "let me check", tool_calls=[ToolCall("b", "f", "{}")])
    orphan = Message("tool", "stray", tool_call_id="zzz")
    sent = chat_history(convo(Message("user", "q"), answered, result, unanswered, orphan))
    assert [m.role for m in sent] == ["user", "assistant", "tool", "assistant"]
    assert sent[1].tool_calls and not sent[3].tool_calls  # the unanswered call is dropped
    assert sent[3].content == "let me check"


def test_the_wire_shape_validates_against_the_openapi_spec() -> None:
    call = ToolCall("call_1", "read_file", '{"path": "a.md"}')
    conversation = convo(
        Message("user", "read", attachments=[Attachment("a.md", "has ``` fences")]),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "text of a.md", tool_call_id="call_1", name="read_file"),
        Message("assistant", "done"),
        Message("user", "again"),
    )
    conversation.system = "sys"
    conversation.params = GenerationParams(temperature=0.5, stop=("END",), seed=1)
    tool = ToolSpec("read_file", "Read a file", {"type": "object", "properties": {}})
    request = build_request(conversation, "chat", Settings(), tools=(tool,))
    assert isinstance(request, ChatRequest)
    from chatrepl.backends.openai_backend import chat_arguments

    body = chat_arguments(request, stream=True)
    validate_request("/v1/chat/completions", body)
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    assert body["messages"][1]["content"].startswith("File a.md:\n````\n")
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "read_file"
    assert body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "text of a.md",
    }
    assert body["temperature"] == 0.5 and body["stop"] == ["END"] and body["seed"] == 1
    assert body["tools"][0]["function"]["name"] == "read_file"


def test_parameters_layer_settings_then_session_then_turn() -> None:
    conversation = convo()
    conversation.json_mode = True
    conversation.params = GenerationParams(temperature=0.1, max_tokens=50)
    settings = Settings(chat_max_tokens=10)
    params = request_params(conversation, "chat", settings, GenerationParams(temperature=0.9))
    assert params == GenerationParams(max_tokens=50, temperature=0.9, response_format="json_object")
    assert request_params(conversation, "complete", settings).response_format is None


def test_streamed_tool_calls_are_assembled_by_index() -> None:
    chunks = [
        {"choices": [{"delta": {"tool_calls": [
            {"index": 0, "id": "c0", "function": {"name": "a", "arguments": '{"x"'}},
            {"index": 1, "id": "c1", "function": {"name": "b", "arguments": ""}},
        ]}}]},
        {"choices": [{"delta": {"tool_calls": [
            {"index": 1, "function": {"arguments": '{"y": 2}'}},
            {"index": 0, "function": {"arguments": ": 1}"}},
        ]}}]},
        {"choices": [{"delta": {"content": "and text"}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]  # fmt: skip
    deltas = [d for chunk in chunks for d in wire.chunk_deltas(chunk)]
    calls: dict[int, ToolCall] = {}
    for delta in deltas:
        if isinstance(delta, ToolCallDelta):
            _merge_tool_call(calls, delta)
    assert calls == {0: ToolCall("c0", "a", '{"x": 1}'), 1: ToolCall("c1", "b", '{"y": 2}')}
    assert TextDelta("and text") in deltas and Finish("tool_calls") in deltas
    assert deltas[-1] == Usage(3, 4, 7)
