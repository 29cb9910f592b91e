"""The session file format: version 2 written, versions 1 and 2 read.

Version 2 adds message ids, tool calls and results, attachments, summaries, per-turn parameters
and session parameters. A version 1 file is read as if it were version 2 (ids are given to its
messages) and is rewritten only when the session changes. Fields this chatrepl does not know,
at the top level or in a message, are kept and written back. A file of a higher version is
refused: this chatrepl cannot know what it would lose by rewriting it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import (
    MODES,
    GenerationParams,
    Message,
    check_nesting,
    now,
    shown,
)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FORMAT_NAME = "chatrepl-session"

_SETTINGS = (
    "name",
    "created",
    "updated",
    "mode",
    "chat_model",
    "completion_model",
    "system",
    "suffix",
    "backend",
    "json_mode",
)
_CONTEXT = ("context_policy", "context_window")  # written only when the session sets them
CONTEXT_POLICIES = ("summarize", "trim", "off")
_KNOWN_KEYS = frozenset(("format", "version", *_SETTINGS, *_CONTEXT, "params", "messages"))
# dumps() writes the settings, then `,\n "messages": [\n  {message},\n  {message}\n ]\n}\n`:
# at one space of indent, `"messages"` can only be the top-level key.
_MESSAGES_KEY = ',\n "messages": '
_MESSAGE_LINE = "\n  {"
_MESSAGES_END = "\n ]\n}\n"
# A lone surrogate (from a \ud800-style escape in a file) cannot be written as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class NewerFormatError(ValueError):
    """The file was written by a newer chatrepl, in a format this one does not know."""


def to_document(conversation: Conversation) -> dict[str, Any]:
    """The JSON-ready version 2 document of a conversation."""
    document: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
    document.update({key: getattr(conversation, key) for key in _SETTINGS})
    document.update({k: getattr(conversation, k) for k in _CONTEXT if getattr(conversation, k)})
    params = conversation.params.to_dict()
    if params:
        document["params"] = params
    document["messages"] = [message.to_dict() for message in conversation.messages]
    return {**conversation.extra, **document}


def from_document(data: Any) -> Conversation:
    """A conversation from a version 1 or 2 document; raises ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("not a chatrepl session (the file is not a JSON object)")
    _check_version(data.get("version"))
    if data.get("mode", "chat") not in MODES:
        raise ValueError(f"unknown mode {shown(data.get('mode'))}")
    conversation = Conversation(**_settings(data))
    conversation.messages = messages_from(data.get("messages", []))
    conversation.extra = {key: value for key, value in data.items() if key not in _KNOWN_KEYS}
    check_nesting(conversation.extra, "an unknown field")
    return conversation


def messages_from(items: Any) -> list[Message]:
    """The messages of a document's "messages" list; ValueError naming a bad one."""
    if not isinstance(items, list):
        raise ValueError("messages must be a list")
    return [_message(item, index) for index, item in enumerate(items)]


def split_messages(text: str) -> tuple[Conversation, int, int] | None:
    """For a file in dumps()'s layout (messages last, one a line): its conversation without
    the messages, where their list starts (to parse later with messages_at) and how many there
    are. None for a file laid out otherwise: it is read whole."""
    at = text.find(_MESSAGES_KEY)
    if at < 0 or not text.endswith(_MESSAGES_END):
        return None
    try:
        head = json.loads(text[:at] + "\n}")
    except ValueError:  # laid out otherwise after all (edited by hand, say)
        return None
    if not isinstance(head, dict) or "messages" in head:
        return None
    start = at + len(_MESSAGES_KEY)
    # A message is one line, and a JSON string cannot hold a raw line break.
    return from_document(head), start, text.count(_MESSAGE_LINE, start)


def messages_at(text: str, start: int) -> list[Message]:
    """The messages whose list starts at `start`, the rest of the document closing it."""
    items, end = json.JSONDecoder().raw_decode(text, start)
    if text[end:] != "\n}\n":
        raise ValueError("unexpected text after the messages")
    return messages_from(items)


def dumps(conversation: Conversation) -> str:
    """Readable and fast: settings indented, one message per line (5,000 messages in ~40 ms)."""
    document = to_document(conversation)
    messages = document.pop("messages")
    head = json.dumps(document, ensure_ascii=False, indent=1).removesuffix("\n}")
    lines = ",\n  ".join(json.dumps(message, ensure_ascii=False) for message in messages)
    return _escape_lone_surrogates(f'{head},\n "messages": [\n  {lines}\n ]\n}}\n')


def _escape_lone_surrogates(text: str) -> str:
    """JSON text whose lone surrogates (inside strings) are escapes, so it encodes as UTF-8."""
    try:
        text.encode("utf-8")  # a few ms for megabytes: much faster than searching
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)
    return text


def _check_version(version: Any) -> None:
    if isinstance(version, int) and not isinstance(version, bool):
        if version in READABLE_VERSIONS:
            return
        if version > FORMAT_VERSION:
            raise NewerFormatError(
                f"written by a newer chatrepl (session format {shown(version)}; this one reads "
                f"up to {FORMAT_VERSION}): upgrade chatrepl to open it; the file is left untouched"
            )
    raise ValueError(f"not a chatrepl session (unknown format version {shown(version)})")


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"mode": data.get("mode", "chat")}
    for key in ("name", "system", "suffix", "backend"):
        values[key] = _optional_text(data, key)
    for key in ("chat_model", "completion_model"):
        values[key] = _optional_text(data, key) or ""
    for key in ("created", "updated"):
        values[key] = _optional_text(data, key) or now()
    values["json_mode"] = data.get("json_mode") is True
    values.update(_context_settings(data))
    if data.get("params") is not None:
        try:
            values["params"] = GenerationParams.from_dict(data["params"])
        except ValueError as error:
            raise ValueError(f"bad session parameters: {error}") from error
    return values


def _context_settings(data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    policy, window = data.get("context_policy"), data.get("context_window")
    if policy is not None:
        if policy not in CONTEXT_POLICIES:
            raise ValueError(f"context_policy must be one of {', '.join(CONTEXT_POLICIES)}")
        values["context_policy"] = policy
    if window is not None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ValueError("context_window must be a positive number of tokens")
        values["context_window"] = window
    return values


def _message(data: Any, index: int) -> Message:
    try:
        return Message.from_dict(data)
    except ValueError as error:
        raise ValueError(f"message {index + 1}: {error}") from error


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return value
