"""A conversation as a file to keep or share: Markdown (roles as headings) or the session JSON;
and the code blocks of a reply.

Chat messages are Markdown already and are written as they are (a code fence left open by an
interrupted reply is closed, so it cannot swallow the messages after it). Text that is not
Markdown (completion-mode text, tool arguments and results, attached files) is fenced with a
fence longer than any run of backticks inside it, so it comes back out exactly as it went in.
"""

from __future__ import annotations

import re
from pathlib import Path

from chatrepl.conversation import session_format
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message
from chatrepl.errors import ChatReplError
from chatrepl.files import reason, write_atomically, write_new

FORMATS = ("md", "json")
SUFFIXES = {"md": ".md", "json": ".json"}
_BACKTICKS = re.compile(r"`+")


def export_text(conversation: Conversation, format: str) -> str:
    """The conversation in `format` (md or json)."""
    if format == "json":
        return session_format.dumps(conversation)
    return to_markdown(conversation)


def format_of(path: str | Path | None, given: str | None = None) -> str:
    """The format asked for, else the one a file name's suffix names (.json), else md."""
    if given is not None:
        if given not in FORMATS:
            raise ChatReplError(f"unknown export format {given!r}: use md or json")
        return given
    return "json" if path is not None and str(path).lower().endswith(".json") else "md"


def write_export(path: Path, text: str, force: bool = False) -> None:
    """Write an export (0600); an existing file is replaced only when `force` says so."""
    if path.is_dir():
        raise ChatReplError(f"{path} is a directory: name a file")
    if not path.parent.is_dir():
        raise ChatReplError(f"cannot write {path}: there is no directory {path.parent}")
    data = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be written
    try:
        if force:
            write_atomically(path, data)
        else:
            write_new(path, data)
    except FileExistsError:
        raise ChatReplError(f"{path} exists already: add --force to replace it") from None
    except OSError as error:
        raise ChatReplError(f"cannot write {path}: {reason(error)}") from error


def to_markdown(conversation: Conversation) -> str:
    """Markdown: a title, the system prompt, then each message under a heading naming its role."""
    parts = [f"# {_flat(conversation.name or 'chat')}", _about(conversation)]
    if conversation.system:
        parts += ["## System prompt", _closed(conversation.system)]
    for message in conversation.messages:
        parts += message_parts(message)
    return "\n\n".join(part for part in parts if part) + "\n"


def message_parts(message: Message) -> list[str]:
    """A message's heading, then its text, attachments and tool calls."""
    parts = [f"## {heading(message)}"]
    for item in message.attachments:
        if item.is_image:
            parts.append(f"Attached image {inline_code(item.name)} ({item.media_type}).")
        else:
            parts += [f"Attached {inline_code(item.name)}:", fenced(item.text)]
    if message.content:
        markdown = message.mode == "chat" and message.role != "tool"
        parts.append(_closed(message.content) if markdown else fenced(message.content))
    for call in message.tool_calls:
        parts += [f"Tool call {inline_code(call.name)}:", fenced(call.arguments, "json")]
    return parts


def heading(message: Message) -> str:
    """`User`, `Assistant · MODEL`, `Tool result · NAME`, `Summary of N messages`..., marked."""
    role = message.role
    if message.is_summary:
        words = [f"Summary of {len(message.summary_of or [])} earlier messages"]
    elif role == "tool":
        words = ["Tool result", message.name or "tool"]
    elif role == "assistant":
        words = ["Completion" if message.mode == "complete" else "Assistant", message.model or ""]
    else:
        words = ["Prompt" if message.mode == "complete" and role == "user" else role.title()]
    if message.summarized_by:
        words.append("summarized (not sent)")
    if message.interrupted:
        words.append("interrupted")
    return " · ".join(_flat(word) for word in words if word)


def fenced(text: str, info: str = "") -> str:
    """text in a code fence longer than any run of backticks in it: it reads back unchanged."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{fence}{info}\n{body}{fence}"


def inline_code(text: str) -> str:
    """text as inline code, whatever backticks it holds."""
    text = _flat(text)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def code_blocks(markdown: str) -> list[str]:
    """The code of every fenced or indented code block, in order, lists and quotes included."""
    return [token.content for token in _parse(markdown) if token.type in ("fence", "code_block")]


def _closed(markdown: str) -> str:
    """Markdown with a code fence left open at its end closed."""
    markdown = markdown.rstrip("\n")
    lines = markdown.split("\n")
    for token in _parse(markdown):
        if token.type != "fence" or token.level != 0 or token.map is None:
            continue
        start, end = token.map
        if end - 1 == start or not _closes(lines[end - 1], token.markup):
            return f"{markdown}\n{token.markup}"
    return markdown


def _closes(line: str, markup: str) -> bool:
    """Whether a line is a closing fence for an opening `markup`."""
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) < 4
        and len(stripped) >= len(markup)
        and stripped == markup[0] * len(stripped)
    )


def _parse(markdown: str) -> list:
    from markdown_it import MarkdownIt  # rich's own parser; imported when first needed

    return MarkdownIt("commonmark").parse(markdown)


def _about(conversation: Conversation) -> str:
    count = len(conversation.messages)
    return _flat(
        f"chatrepl session · {conversation.mode} mode · model {conversation.model} · "
        f"{count} message{'' if count == 1 else 's'} · created {conversation.created} · "
        f"updated {conversation.updated}"
    )


def _flat(text: str) -> str:
    """One line: a name or model from a file cannot start a new Markdown block."""
    return " ".join(text.split())
