"""What a slash-command hands back for the REPL to show."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatrepl.conversation.messages import Message
from chatrepl.conversation.search_index import Excerpt


@dataclass(frozen=True)
class Table:
    """Rows for the app to show as a table."""

    headers: tuple[str, ...]
    rows: list[tuple[str | Excerpt, ...]]  # an Excerpt: a line with its matches highlighted


@dataclass(frozen=True)
class Clip:
    """Text for the app to copy to the clipboard, and what it is (`code block 2 of the reply`)."""

    text: str
    what: str


@dataclass(frozen=True)
class Result:
    """What a command hands back for the app to show."""

    message: str | None = None
    table: Table | None = None
    transcript: list[Message] = field(default_factory=list)
    paged: bool = False  # the transcript goes through a pager when taller than the screen
    clip: Clip | None = None  # the app should copy this to the clipboard
    quit: bool = False
    retry: bool = False  # the app should ask the last user message again
    retry_model: str | None = None  # ... with this model
    retry_text: str | None = None  # ... with this text instead (/edit)
    continue_reply: bool = False  # the app should continue the last reply
