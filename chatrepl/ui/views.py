"""How results look: status lines, errors, tables, transcripts and reply footers (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from chatrepl.conversation.messages import Message
from chatrepl.engine.turn import Sink, TurnOutcome


def error(console: Console, message: str) -> None:
    """One red line."""
    console.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)


def info(console: Console, message: str) -> None:
    """One dim status line."""
    console.print(Text(message, style="dim"), soft_wrap=True)


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> RichTable:
    """A rich table of plain-text cells."""
    rendered = RichTable(*headers, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        rendered.add_row(*(escape(cell) for cell in row))
    return rendered


_LABEL_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "bold magenta"}


def transcript(console: Console, messages: list[Message], code_theme: str = "monokai") -> None:
    """Messages as a readable exchange: labels, Markdown for chat replies, tool calls in a line."""
    from rich.markdown import Markdown

    for message in messages:
        console.print(Text(message_label(message), style=_LABEL_STYLES.get(message.role, "bold")))
        for item in message.attachments:
            console.print(Text(f"[attached {item.name}: {len(item.text)} characters]", "dim"))
        if message.role == "assistant" and message.mode == "chat" and message.content:
            console.print(Markdown(message.content, code_theme=code_theme))
        elif message.content:
            console.print(Text(message.content))
        for call in message.tool_calls:
            console.print(Text(f"tool {call.name}({call.arguments})", style="magenta"))


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


def turn_footer(console: Console, outcome: TurnOutcome) -> None:
    """What to say after a turn: the reply's footer, and whether the tool loop was cut off."""
    if outcome.step_limit_reached:
        console.print(Text("stopped: the tool-call step limit was reached", style="yellow"))
    if outcome.started:
        reply_footer(console, outcome.reply)


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
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
            f"= {usage.total_tokens} tokens",
        )


class Waiting:
    """A spinner until the reply's first text arrives, which it then passes on to sink."""

    def __init__(self, console: Console, sink: Sink, model: str) -> None:
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
