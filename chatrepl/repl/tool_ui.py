"""How tool calls look in the REPL: each call a line, the confirmation question, and a reply's
text split around them (each step of the tool loop gets its own renderer)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from chatrepl.conversation.messages import ToolCall
from chatrepl.tools.approval import ask_approval
from chatrepl.tools.toolbox import Approval, Tool
from chatrepl.ui import views as view
from chatrepl.ui.stream_render import StreamRenderer


class StepSink:
    """Feeds the current step's renderer, opening one at the first text; `pause()` closes it,
    so a tool line is printed after the text before it, never inside a live Markdown block."""

    def __init__(self, make: Callable[[], StreamRenderer]) -> None:
        self._make = make
        self._current: StreamRenderer | None = None
        self.on_pause: Callable[[], None] | None = None  # e.g. stop a spinner

    def feed(self, text: str) -> None:
        """Hand text to the open renderer."""
        if self._current is None:
            self._current = self._make().__enter__()
        self._current.feed(text)

    def pause(self) -> None:
        """Finish what is on screen; the next text opens a new renderer."""
        if self.on_pause is not None:
            self.on_pause()
        if self._current is not None:
            current, self._current = self._current, None
            current.__exit__(None, None, None)


class ReplToolUI:
    """The Toolbox's `notify` and `approve` for the REPL."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.sink: StepSink | None = None  # the turn in progress, if any

    def notify(self, line: str) -> None:
        """One line about a tool call, below the text so far."""
        self._pause()
        view.tool_line(self.console, line)

    def approve(self, tool: Tool, call: ToolCall) -> Approval:
        """Ask on the terminal; Ctrl-C stops the turn (everything so far is kept)."""
        self._pause()
        return ask_approval(self._read_line, lambda text: view.info(self.console, text), tool, call)

    def _read_line(self, question: str, default: str) -> str:
        from prompt_toolkit import prompt

        return prompt(question, default=default)

    def _pause(self) -> None:
        if self.sink is not None:
            self.sink.pause()
