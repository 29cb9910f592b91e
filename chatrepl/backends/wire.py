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


def chat_messages(request: ChatRequest, images: bool = True) -> list[dict[str, Any]]:
    """The `messages` list: the system prompt, then each message in the API's shape (without
    `images`, a model that cannot see them is told each one's name instead)."""
    sent: list[dict[str, Any]] = []
    if request.system:
        sent.append({"role": "system", "content": request.system})
    sent.extend(wire_message(message, images) for message in request.messages)
    return sent


def wire_message(message: Message, images: bool = True) -> dict[str, Any]:
    """One message as the Chat Completions API takes it: a user message with images has a list
    of content parts (its text, then each image as a data URL); every other one, plain text."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        # "" rather than null: llama-cpp-python's server refuses null (the spec takes both).
        return {"role": "assistant", "content": message.content, "tool_calls": calls}
    if images and any(item.is_image for item in message.attachments):
        return {"role": message.role, "content": content_parts(message)}
    return {"role": message.role, "content": user_text(message)}


def user_text(message: Message) -> str:
    """The message's text with its text attachments, each fenced under its file name (an image
    is named only: its bytes go as a content part, or not at all)."""
    if not message.attachments:
        return message.content
    parts = [
        f"[image {item.name}]" if item.is_image else attachment_block(item)
        for item in message.attachments
    ]
    return "\n\n".join([*parts, message.content] if message.content else parts)


def content_parts(message: Message) -> list[dict[str, Any]]:
    """A user message's content parts: its text (files fenced in it), then each image."""
    texts = [attachment_block(item) for item in message.attachments if not item.is_image]
    text = "\n\n".join([*texts, message.content] if message.content else texts)
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    parts += [
        {"type": "image_url", "image_url": {"url": data_url(item)}}
        for item in message.attachments
        if item.is_image
    ]
    return parts


def data_url(attachment: Attachment) -> str:
    """An image attachment as a `data:` URL."""
    return f"data:{attachment.media_type};base64,{attachment.data}"


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
