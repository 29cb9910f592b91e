"""The OpenAI wire shape, shared by every backend that speaks it (the SDK and llama-cpp-python).

Neutral requests become the `messages` list and keyword arguments the Chat Completions API
takes; streamed chunks (SDK objects or plain dicts) become typed deltas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatrepl.backends.base import (
    ChatRequest,
    Delta,
    Finish,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from chatrepl.conversation.messages import Attachment, GenerationParams, Message, Usage


def chat_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """The `messages` list: the system prompt, then each message in the API's shape."""
    sent: list[dict[str, Any]] = []
    if request.system:
        sent.append({"role": "system", "content": request.system})
    sent.extend(wire_message(message) for message in request.messages)
    return sent


def wire_message(message: Message) -> dict[str, Any]:
    """One message as the Chat Completions API takes it."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        return {"role": "assistant", "content": message.content or None, "tool_calls": calls}
    return {"role": message.role, "content": user_text(message)}


def user_text(message: Message) -> str:
    """The message's text with its attachments, each fenced under its file name."""
    if not message.attachments:
        return message.content
    parts = [attachment_block(item) for item in message.attachments]
    return "\n\n".join([*parts, message.content] if message.content else parts)


def attachment_block(attachment: Attachment) -> str:
    """A file's text fenced so the model sees where it starts and ends."""
    fence = "```"
    while fence in attachment.text:
        fence += "`"
    return f"File {attachment.name}:\n{fence}\n{attachment.text}\n{fence}"


def tool_definitions(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    """The `tools` list of function definitions."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def tool_choice(choice: str, tools: tuple[ToolSpec, ...]) -> Any:
    """`auto`/`none`/`required` as they are; a tool's name as the named-function object."""
    if choice in ("auto", "none", "required") or choice not in {t.name for t in tools}:
        return choice
    return {"type": "function", "function": {"name": choice}}


def param_arguments(params: GenerationParams) -> dict[str, Any]:
    """Sampling and length parameters that are set, as keyword arguments."""
    arguments = params.to_dict()
    if "response_format" in arguments:
        arguments["response_format"] = {"type": arguments["response_format"]}
    return arguments


def chunk_deltas(chunk: Any) -> Iterator[Delta]:
    """Deltas from one streamed chunk, an SDK object or a dict of the same shape."""
    for choice in _get(chunk, "choices") or []:
        delta = _get(choice, "delta")
        text = _get(delta, "content") if delta is not None else _get(choice, "text")
        if text:
            yield TextDelta(text)
        for call in (_get(delta, "tool_calls") if delta is not None else None) or []:
            yield _tool_call_delta(call)
        reason = _get(choice, "finish_reason")
        if reason:
            yield Finish(reason)
    usage = usage_from(_get(chunk, "usage"))
    if usage is not None:
        yield usage


def usage_from(usage: Any) -> Usage | None:
    """Token counts from a response's `usage` (object or dict), when it has them."""
    if usage is None or _get(usage, "total_tokens") is None:
        return None
    prompt = _get(usage, "prompt_tokens") or 0
    completion = _get(usage, "completion_tokens") or 0
    return Usage(prompt, completion, _get(usage, "total_tokens"))


def _tool_call_delta(call: Any) -> ToolCallDelta:
    function = _get(call, "function")
    return ToolCallDelta(
        index=_get(call, "index") or 0,
        id=_get(call, "id"),
        name=_get(function, "name") if function is not None else None,
        arguments=(_get(function, "arguments") if function is not None else None) or "",
    )


def _get(item: Any, key: str) -> Any:
    if isinstance(item, dict):
        return item.get(key)
    return getattr(item, key, None)
