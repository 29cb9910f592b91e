"""How results look: status lines, errors, tables, transcripts and reply footers (rich).

Everything shown here may come from the network or a file (a server's error message, a model or
session name, a message), so every text is made safe for the terminal first (``safe_text``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from chatrepl.context.meter import reply_meter
from chatrepl.conversation.messages import Message
from chatrepl.conversation.search_index import Excerpt, Hit
from chatrepl.engine.turn import Sink, TurnOutcome
from chatrepl.ui.markdown_links import show_link_targets
from chatrepl.ui.safe_text import StreamSanitizer, sanitize, sanitize_markdown

# A longer message is written as plain text, straight to the output: rich's Markdown and line
# wrapping take seconds per megabyte, which made showing a 50 MB message take minutes.
RICH_MAX_CHARS = 65_536
# A terminal is shown only the beginning of such a message, with a note saying how to see it all.
TERMINAL_MAX_CHARS = 262_144
_PIECE = 1 << 20  # characters sanitized and written at a time


def error(console: Console, message: str) -> None:
    """One red line."""
    console.print(Text(f"error: {sanitize(message)}", style="bold red"), soft_wrap=True)


def terminal_console() -> Console:
    """The console of the terminal chatrepl runs in."""
    return Console(highlight=False)


def info(console: Console, message: str) -> None:
    """One dim status line."""
    console.print(Text(sanitize(message), style="dim"), soft_wrap=True)


def warning(console: Console, message: str) -> None:
    """One yellow line."""
    console.print(Text(sanitize(message), style="yellow"), soft_wrap=True)


def tool_line(console: Console, message: str) -> None:
    """One line about a tool call (its name and arguments come from the model: untrusted)."""
    console.print(Text(sanitize(message), style="magenta"), soft_wrap=True)


def table(headers: tuple[str, ...], rows: list[tuple[str | Excerpt, ...]]) -> RichTable:
    """A rich table of plain-text cells (an excerpt's matches highlighted)."""
    rendered = RichTable(*headers, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        rendered.add_row(*(_cell(cell) for cell in row))
    return rendered


def _cell(cell: str | Excerpt) -> Text:
    """A cell made safe for the terminal."""
    if not isinstance(cell, Excerpt):
        return Text(sanitize(cell))
    text, done = Text(), 0
    for start, end in cell.marks:
        text.append(sanitize(cell.text[done:start]))
        text.append(sanitize(cell.text[start:end]), style=MATCH_STYLE)
        done = end
    text.append(sanitize(cell.text[done:]))
    return text


MATCH_STYLE = "bold yellow"
SEARCH_HEADERS = ("session", "date", "matches", "best match")


def search_row(hit: Hit) -> tuple[str | Excerpt, ...]:
    """A search result as a table row: session, date of its best match, count, matching line."""
    return (hit.session, hit.date, str(hit.matches), hit.line)


_LABEL_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "bold magenta"}


def transcript(console: Console, messages: list[Message], code_theme: str = "monokai") -> None:
    """Messages as a readable exchange: labels, Markdown for chat replies, tool calls in a line."""
    for message in messages:
        label = sanitize(message_label(message))
        console.print(Text(label, style=_LABEL_STYLES.get(message.role, "bold")))
        for item in message.attachments:
            size = f"{item.media_type} image" if item.is_image else f"{len(item.text)} characters"
            attached = f"[attached {sanitize(item.name)}: {sanitize(size)}]"
            console.print(Text(attached, "dim"))
        if message.content:
            _content(console, message, code_theme)
        for call in message.tool_calls:
            line = sanitize(f"tool {call.name}({call.arguments})")
            console.print(Text(line, style="magenta"))


def _content(console: Console, message: Message, code_theme: str) -> None:
    """A message's text: Markdown for a chat reply, plain otherwise or when it is very long."""
    content = message.content
    if len(content) > RICH_MAX_CHARS:
        _long_content(console, content)
    elif message.role == "assistant" and message.mode == "chat":
        console.print(markdown(content, code_theme))
    else:
        console.print(Text(sanitize(content)))


def markdown(text: str, code_theme: str = "monokai") -> Any:
    """rich Markdown of untrusted text: made safe, links showing their targets."""
    from rich.markdown import Markdown

    rendered = Markdown(sanitize_markdown(text), code_theme=code_theme)
    show_link_targets(rendered.parsed)
    return rendered


def _long_content(console: Console, content: str) -> None:
    """A very long text, in linear time; a terminal gets its beginning and a note."""
    info(console, f"({len(content):,} characters: shown as plain text)")
    shown = len(content)
    if console.is_terminal:
        shown = min(shown, TERMINAL_MAX_CHARS)
    write_safely(console, content, shown)
    if shown < len(content):
        info(
            console,
            f"(cut here: {len(content) - shown:,} more characters are in the session; "
            "`chatrepl sessions show NAME > FILE` writes them all)",
        )


def write_safely(console: Console, text: str, length: int | None = None) -> None:
    """Write text[:length] to the console's file made safe, piece by piece, ending the line."""
    length = len(text) if length is None else length
    sanitizer = StreamSanitizer()
    file = console.file
    for start in range(0, length, _PIECE):
        file.write(sanitizer.feed(text[start : min(start + _PIECE, length)]))
    held_back = sanitizer.flush()
    ends_line = text[length - 1 : length] == "\n" and not held_back
    file.write(held_back if ends_line else held_back + "\n")
    file.flush()


def message_label(message: Message) -> str:
    """`role · mode`, with what else is true of the message."""
    parts = [message.role, message.mode]
    if message.role == "tool" and message.name:
        parts.append(f"result of {message.name}")
    if message.is_summary:
        parts.append(f"summary of {len(message.summary_of or [])} messages")
    if message.summarized_by:
        parts.append("summarized (not sent)")
    if message.interrupted:
        parts.append("interrupted")
    return " · ".join(parts)


def turn_footer(console: Console, outcome: TurnOutcome, cost: Decimal | None = None) -> None:
    """What to say after a turn: the reply's footer, and whether the tool loop was cut off."""
    if outcome.step_limit_reached:
        warning(console, "stopped: the tool-call step limit was reached (tool_steps)")
    if outcome.started:
        reply_footer(console, outcome.reply, cost)


def reply_footer(console: Console, reply: Message, cost: Decimal | None = None) -> None:
    """The meter (tokens, cost, speed); a warning when the reply was cut off."""
    if reply.interrupted:
        info(console, "(interrupted: the partial reply is kept)")
    if reply.finish_reason == "length":
        console.print(
            Text(
                "warning: the reply was cut off at the token limit (finish_reason=length)",
                style="yellow",
            )
        )
    line = reply_meter(reply, cost)
    if line:
        info(console, line)


class Waiting:
    """A spinner until the reply's first text arrives, which it then passes on to sink."""

    def __init__(self, console: Console, sink: Sink, model: str) -> None:
        self._sink = sink
        self._status = (
            console.status(Text(f"waiting for {sanitize(model)}…", style="dim"), spinner="dots")
            if console.is_terminal
            else None
        )

    def __enter__(self) -> Waiting:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def feed(self, text: str) -> None:
        """Stop the spinner (once) and hand the text on."""
        self.stop()
        self._sink.feed(text)

    def stop(self) -> None:
        """Take the spinner off the screen (something else is about to be printed)."""
        if self._status is not None:
            self._status.stop()
            self._status = None
