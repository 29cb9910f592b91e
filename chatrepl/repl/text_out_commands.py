"""The handlers of /copy, /export, /save and /rename: getting text out of a conversation."""

from __future__ import annotations

import shlex
from pathlib import Path

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.export import (
    FORMATS,
    SUFFIXES,
    code_blocks,
    export_text,
    format_of,
    write_export,
)
from chatrepl.conversation.messages import Message
from chatrepl.conversation.store import check_name
from chatrepl.errors import CommandError, SessionError
from chatrepl.repl.results import Clip, Result
from chatrepl.repl.state import ReplState

COPY_USAGE = "use /copy (the last reply), /copy N (its Nth code block) or /copy code (its last)"
EXPORT_USAGE = "use /export [md|json] [FILE] [--force]"
FORCE = "--force"


def copy_command(state: ReplState, arg: str) -> Result:
    """The last reply, or one of its code blocks, for the app to copy to the clipboard."""
    reply = last_reply(state.conversation)
    if not arg:
        return Result(clip=Clip(reply.content, "the last reply"))
    if arg != "code" and not arg.isdigit():
        raise CommandError(COPY_USAGE)
    blocks = code_blocks(reply.content)
    if not blocks:
        raise CommandError("the last reply has no code block")
    number = len(blocks) if arg == "code" else int(arg)
    if not 1 <= number <= len(blocks):
        count = f"{len(blocks)} code block{'s' if len(blocks) > 1 else ''}"
        raise CommandError(f"the last reply has {count}: /copy 1 to /copy {len(blocks)}")
    return Result(clip=Clip(blocks[number - 1], f"code block {number} of the last reply"))


def last_reply(conversation: Conversation) -> Message:
    """The latest assistant message with text (not one that only calls tools)."""
    for message in reversed(conversation.messages):
        if message.role == "assistant" and message.content:
            return message
    raise CommandError("nothing to copy: there is no reply yet")


def export_command(state: ReplState, arg: str) -> Result:
    """Write the conversation as Markdown or as its session JSON; default NAME.md here."""
    format, file, force = _export_arguments(arg)
    conversation = state.conversation
    if not conversation.messages:
        raise CommandError("nothing to export: no messages yet")
    format = format_of(file, format)
    name = conversation.name or "chat"
    path = Path(file).expanduser() if file else Path(name + SUFFIXES[format])
    write_export(path, export_text(conversation, format), force)
    count = len(conversation.messages)
    return Result(f"exported {count} message{'s' if count > 1 else ''} as {format} to {path}")


def _export_arguments(arg: str) -> tuple[str | None, str | None, bool]:
    """(format, file, force) from `[md|json] [FILE] [--force]`; a FILE may be quoted."""
    try:
        words = shlex.split(arg)
    except ValueError as error:
        raise CommandError(f"{EXPORT_USAGE} ({error})") from None
    force = FORCE in words
    words = [word for word in words if word != FORCE]
    format = words.pop(0) if words and words[0] in FORMATS else None
    if len(words) > 1 or (words and words[0].startswith("-")):
        raise CommandError(EXPORT_USAGE)
    return format, (words[0] if words else None), force


def save_command(state: ReplState, arg: str) -> Result:
    """`/save` saves; `/save NAME` saves a copy as NAME and this session goes on as it was."""
    conversation, store = state.conversation, state.store
    if arg and conversation.name is None:  # never saved: nothing to copy, it takes the name
        return _name(state, arg, "saved as")
    store.save(conversation)
    if not arg or arg == conversation.name:
        return Result(f"saved as {conversation.name} ({store.path(conversation.name or '')})")
    path = store.copy(conversation, arg)
    return Result(f"saved a copy as {arg} ({path}); this session is still {conversation.name}")


def rename_command(state: ReplState, arg: str) -> Result:
    """Give the session a new name: its file is renamed."""
    if not arg:
        raise CommandError("usage: /rename NAME")
    conversation, store = state.conversation, state.store
    old = conversation.name
    if arg == old:
        return Result(f"the session is already called {arg}")
    if old is None or not store.exists(old):
        return _name(state, arg, f"renamed {old} to" if old else "named")
    check_name(arg)
    store.save(conversation)
    store.rename(old, arg)
    conversation.name = arg
    return Result(f"renamed {old} to {arg} ({store.path(arg)})")


def _name(state: ReplState, name: str, done: str) -> Result:
    """Name a session that has no file yet, and save it; a name taken by another is refused."""
    conversation, store = state.conversation, state.store
    if store.exists(check_name(name)):
        raise SessionError(f"a session named {name!r} already exists; choose another name")
    old, conversation.name = conversation.name, name
    try:
        path = store.save(conversation)
    except BaseException:
        conversation.name = old
        raise
    store.release(old)
    return Result(f"{done} {name} ({path})")
