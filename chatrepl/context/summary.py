"""Summaries that stand for the oldest part of a conversation.

The model writes them in a separate, non-streamed request. A later summary extends the previous
one: it is given the previous summary and the messages since, and stands for all of them. The
messages it stands for stay in the session, marked `summarized_by`, and are never deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from chatrepl.backends.base import Backend, ChatRequest, Request
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import GenerationParams, Message, Timing
from chatrepl.errors import BackendError

PREFIX = "Summary of the earlier conversation:\n"
Observe = Callable[[Request, Message | None, str | None, str], None]
INSTRUCTIONS = """\
You compress the earlier part of a conversation between a user and an assistant so that the \
assistant can continue it without the original messages. Write a summary in plain prose and \
short lists, in the conversation's language, that keeps:
- what the user wants and asked for, and the decisions and conclusions reached;
- facts, names, numbers, dates, file names, commands and code identifiers that may matter \
later, verbatim;
- what the assistant promised or still has to do, and open questions;
- tools the assistant called and what they returned, when it matters.
Leave out greetings, repetition and anything already superseded. Write only the summary, with \
no preamble, in at most {words} words. If a previous summary is given, fold it in: the new \
summary replaces it."""
ROLE_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool result", "system": "Note"}


def transcript(previous: Message | None, messages: Sequence[Message]) -> str:
    """The text the summarizer reads: the previous summary, then the messages, labelled."""
    parts = []
    if previous is not None:
        parts.append(f"[Previous summary]\n{previous.content.removeprefix(PREFIX)}")
    for message in messages:
        parts.append(f"[{_label(message)}]\n{_text(message)}")
    return "\n\n".join(parts)


def summary_request(
    model: str, previous: Message | None, messages: Sequence[Message], max_tokens: int
) -> ChatRequest:
    """The request asking the model for a summary of `previous` plus `messages`."""
    words = max(40, int(max_tokens * 0.6))
    return ChatRequest(
        model=model,
        messages=(Message("user", transcript(previous, messages)),),
        system=INSTRUCTIONS.format(words=words),
        params=GenerationParams(max_tokens=max_tokens, temperature=0.2),
    )


def write_summary(
    conversation: Conversation,
    backend: Backend,
    previous: Message | None,
    messages: Sequence[Message],
    max_tokens: int,
    observe: Observe | None = None,
) -> Message:
    """Ask for a summary and record it in the conversation; raises BackendError.

    The summary is inserted before the first message it does not stand for, and every message
    it stands for (the previous summary included) is marked with its id.
    """
    model = conversation.chat_model
    request = summary_request(model, previous, messages, max_tokens)
    started = time.perf_counter()
    try:
        reply = backend.respond(request)
    except BackendError as error:
        if observe is not None:
            observe(request, None, str(error), "summary")
        raise
    text = reply.text.strip()
    if not text:
        raise BackendError("the model returned an empty summary")
    covered = [*(previous.summary_of or [] if previous else []), *(m.id for m in messages)]
    summary = Message(
        "system",
        PREFIX + text,
        model=model,
        backend=backend.name,
        summary_of=covered,
        usage=reply.usage,
        finish_reason=reply.finish_reason,
        timing=Timing(None, time.perf_counter() - started),
    )
    _insert(conversation, summary, [*([previous] if previous else []), *messages])
    if observe is not None:
        observe(request, summary, None, "summary")
    return summary


def _insert(conversation: Conversation, summary: Message, covered: list[Message]) -> None:
    ids = {m.id for m in covered}
    for message in covered:
        message.summarized_by = summary.id
    last = max(i for i, m in enumerate(conversation.messages) if m.id in ids)
    conversation.messages.insert(last + 1, summary)
    conversation.touch()


def _label(message: Message) -> str:
    label = ROLE_LABELS.get(message.role, message.role)
    return f"{label} ({message.name})" if message.role == "tool" and message.name else label


def _text(message: Message) -> str:
    text = message.content
    for item in message.attachments:
        text = f"[{'image' if item.is_image else 'file'} {item.name}]\n{item.text}\n\n{text}"
    for call in message.tool_calls:
        text += f"\n[called {call.name}({call.arguments})]"
    return text
