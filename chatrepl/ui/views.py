"""How results look: status lines, errors, tables, transcripts and reply footers (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from chatrepl.commands import Result, Table
from chatrepl.conversation import Message


def error(console: Console, message: str) -> None:
    """One red line."""
    console.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)


def info(console: Console, message: str) -> None:
    """One dim status line."""
    console.print(Text(message, style="dim"), soft_wrap=True)


def result(console: Console, outcome: Result, code_theme: str = "monokai") -> None:
    """Show what a slash-command returned."""
    if outcome.message:
        info(console, outcome.message)
    if outcome.table:
        console.print(table(outcome.table))
    if outcome.transcript:
        transcript(console, outcome.transcript, code_theme)


def table(data: Table) -> RichTable:
    """A rich table of a command's rows."""
    rendered = RichTable(*data.headers, box=None, header_style="bold", pad_edge=False)
    for row in data.rows:
        rendered.add_row(*(escape(cell) for cell in row))
    return rendered


def transcript(console: Console, messages: list[Message], code_theme: str = "monokai") -> None:
    """Messages as a readable exchange: labels, Markdown for chat replies."""
    from rich.markdown import Markdown

    for message in messages:
        label = f"{message.role} · {message.mode}" + (
            " · interrupted" if message.interrupted else ""
        )
        console.print(Text(label, style="bold cyan" if message.role == "user" else "bold green"))
        if message.role == "assistant" and message.mode == "chat":
            console.print(Markdown(message.content, code_theme=code_theme))
        else:
            console.print(Text(message.content))


def reply_footer(console: Console, reply: Message) -> None:
    """Usage when the server reported it; a warning when the reply was cut off."""
    if reply.interrupted:
        info(console, "(interrupted: the partial reply is kept)")
    if reply.finish_reason == "length":
        console.print(
            Text(
                "warning: the reply was cut off at the token limit (finish_reason=length)",
                style="yellow",
            )
        )
    if reply.usage:
        usage = reply.usage
        info(
            console,
            f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion "
            f"= {usage['total_tokens']} tokens",
        )


class Waiting:
    """A spinner until the reply's first text arrives, which it then passes on to sink."""

    def __init__(self, console: Console, sink: Any, model: str) -> None:
        self._sink = sink
        self._status = (
            console.status(Text(f"waiting for {model}…", style="dim"), spinner="dots")
            if console.is_terminal
            else None
        )

    def __enter__(self) -> Waiting:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def feed(self, text: str) -> None:
        """Stop the spinner (once) and hand the text on."""
        self._stop()
        self._sink.feed(text)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
