"""The prompt_toolkit input line: history, auto-suggest, completion, key bindings, toolbar."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.styles import Style

from chatrepl.errors import ChatReplError
from chatrepl.repl import commands
from chatrepl.repl.state import ReplState

# Lines that look like API keys are kept out of the history file.
SECRET = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|[A-Za-z0-9]{32,})\b")
STYLE = Style.from_dict(
    {
        "mode.chat": "ansigreen bold",
        "mode.complete": "ansimagenta bold",
        "bottom-toolbar": "noreverse ansibrightblack",
    }
)


class SecretFilteringHistory(FileHistory):
    """A FileHistory that never writes lines that look like secrets."""

    def store_string(self, string: str) -> None:
        """Append to the file unless the line looks like it holds an API key."""
        if not SECRET.search(string):
            super().store_string(string)


class SlashCompleter(Completer):
    """Completes command names after '/', then each command's own arguments."""

    def __init__(self, state: ReplState) -> None:
        self.state = state

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        """Command names, or argument values from the command's declaration."""
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        name, space, arg = text[1:].partition(" ")
        if not space:
            yield from self._names(name)
            return
        command = commands.find(name)
        if command and command.complete:
            yield from _matching(self._values(command.complete), arg)

    def _names(self, prefix: str) -> Iterable[Completion]:
        for command in commands.COMMANDS:
            for name in (command.name, *command.aliases):
                if name.startswith(prefix):
                    yield Completion(
                        f"/{name}", start_position=-len(prefix) - 1, display_meta=command.help
                    )

    def _values(self, complete: commands.Completions) -> list[str]:
        try:
            return complete(self.state)
        except ChatReplError:  # e.g. the server is down: no completions, no noise
            return []


def _matching(values: list[str], typed: str) -> Iterable[Completion]:
    for value in values:
        if value.startswith(typed):
            yield Completion(value, start_position=-len(typed))


def key_bindings() -> KeyBindings:
    """Enter sends; Esc Enter (Alt-Enter) inserts a newline."""
    bindings = KeyBindings()

    @bindings.add("enter")
    def _send(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


class PromptReader:
    """Reads one message at a time; pasted multi-line text arrives as one message."""

    def __init__(
        self,
        state: ReplState,
        history_path: Path,
        input: Any = None,
        output: Any = None,
    ) -> None:
        self.state = state
        history_path.parent.mkdir(parents=True, exist_ok=True)
        self.session: PromptSession[str] = PromptSession(
            history=SecretFilteringHistory(str(history_path)),
            auto_suggest=AutoSuggestFromHistory(),
            completer=SlashCompleter(state),
            complete_in_thread=True,
            key_bindings=key_bindings(),
            multiline=True,
            prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
            bottom_toolbar=self._toolbar,
            style=STYLE,
            input=input,
            output=output,
        )

    def read(self, default: str = "", on_shown: Callable[[], None] | None = None) -> str:
        """One message; raises KeyboardInterrupt on Ctrl-C and EOFError on Ctrl-D.

        on_shown runs once the prompt is on screen, so slow set-up started there (such as
        importing openai in a thread) does not compete with drawing the first prompt.
        """
        if on_shown is None:
            return self.session.prompt(self._message, default=default)
        return self.session.prompt(
            self._message, default=default, pre_run=lambda: self._after_first_render(on_shown)
        )

    def print_above(self, action: Callable[[], None]) -> None:
        """Run `action` (which prints) above the prompt on screen, then redraw the prompt."""
        from prompt_toolkit.application import run_in_terminal

        run_in_terminal(action)

    def _after_first_render(self, callback: Callable[[], None]) -> None:
        event = self.session.app.after_render

        def once(_: object) -> None:
            event.remove_handler(once)
            callback()

        event.add_handler(once)

    def _message(self) -> FormattedText:
        mode = self.state.conversation.mode
        return FormattedText([(f"class:mode.{mode}", mode), ("", "> ")])

    def _toolbar(self) -> str:
        conversation = self.state.conversation
        parts = [
            f"{self.state.backend.name}:{conversation.model}",
            f"session {conversation.name or '(unsaved)'}",
            f"{len(conversation.messages)} messages",
        ]
        if conversation.mode == "complete" and conversation.suffix:
            parts.append(f"suffix {conversation.suffix!r}")
        if conversation.json_mode and conversation.mode == "chat":
            parts.append("JSON")
        return " · ".join(parts) + " · /help · Esc Enter: newline"
