"""What is sent to the model: the one place a turn's request is built from a conversation.

A context policy (trim, summarize) plugs in here: `chat_history` decides which messages go.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from chatrepl.backends.base import ChatRequest, CompletionRequest, Request, ToolSpec
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import GenerationParams, Message, Mode

_SENDABLE_ROLES = ("system", "user", "assistant", "tool")


def chat_history(conversation: Conversation, omit: AbstractSet[str] = frozenset()) -> list[Message]:
    """The chat-mode messages to send, oldest first.

    Completion-mode turns, messages a summary stands for, and empty replies (stopped before
    their first token) stay in the session but are not sent. An assistant's tool calls go only
    with a result for each of them, and a tool result only after its call, as the API requires.
    """
    candidates = [m for m in conversation.messages if _sendable(m) and m.id not in omit]
    # A summary stands for the oldest messages: it goes first, wherever it is in the session.
    summaries = [m for m in candidates if m.is_summary]
    rest = [m for m in candidates if not m.is_summary]
    return summaries + _pair_tool_results(rest)


def build_request(
    conversation: Conversation,
    mode: Mode,
    settings: Settings,
    model: str | None = None,
    turn_params: GenerationParams | None = None,
    tools: tuple[ToolSpec, ...] = (),
    tool_choice: str | None = None,
    omit: AbstractSet[str] = frozenset(),
) -> Request:
    """The request for the conversation's last user message, in `mode`."""
    params = request_params(conversation, mode, settings, turn_params)
    model = model or conversation.model_for(mode)
    if mode == "complete":
        return CompletionRequest(
            model=model,
            prompt=last_user_text(conversation),
            suffix=conversation.suffix,
            params=params,
        )
    return ChatRequest(
        model=model,
        messages=tuple(chat_history(conversation, omit)),
        system=conversation.system,
        tools=tools,
        tool_choice=tool_choice if tools else None,
        params=params,
    )


def request_params(
    conversation: Conversation,
    mode: Mode,
    settings: Settings,
    turn_params: GenerationParams | None = None,
) -> GenerationParams:
    """Settings' defaults, then the session's parameters, then this turn's (highest wins)."""
    configured = GenerationParams(
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=settings.seed,
        stop=settings.stop,
        presence_penalty=settings.presence_penalty,
        frequency_penalty=settings.frequency_penalty,
    )
    if mode == "complete":
        # Completion servers default to 16 tokens: a length is always sent.
        length = GenerationParams(max_tokens=settings.max_tokens)
    else:
        json_format = "json_object" if conversation.json_mode else None
        length = GenerationParams(max_tokens=settings.chat_max_tokens, response_format=json_format)
    params = configured.merged(length).merged(conversation.params)
    return params.merged(turn_params) if turn_params else params


def _sendable(message: Message) -> bool:
    if message.mode != "chat" or message.summarized_by or message.role not in _SENDABLE_ROLES:
        return False
    if message.role == "assistant":
        return bool(message.content or message.tool_calls)
    return message.role == "tool" or bool(message.content or message.attachments)


def _pair_tool_results(messages: list[Message]) -> list[Message]:
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    kept: list[Message] = []
    called: set[str] = set()
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            if all(call.id in answered for call in message.tool_calls):
                called.update(call.id for call in message.tool_calls)
            elif message.content:
                kept.append(_without_tool_calls(message))
                continue
            else:
                continue
        if message.role == "tool" and message.tool_call_id not in called:
            continue
        kept.append(message)
    return kept


def _without_tool_calls(message: Message) -> Message:
    from dataclasses import replace

    return replace(message, tool_calls=[])


def last_user_text(conversation: Conversation) -> str:
    """The text of the last user message (a completion turn's prompt)."""
    index = conversation.last_user_index()
    return conversation.messages[index].content if index is not None else ""
