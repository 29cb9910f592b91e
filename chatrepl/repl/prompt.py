"""The prompt_toolkit input line: history, auto-suggest, completion, key bindings, toolbar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.keys import Keys
from prompt_toolkit.styles import Style

from chatrepl.errors import ChatReplError
from chatrepl.files import private_file
from chatrepl.repl import commands
from chatrepl.repl.paste import use_linear_paste
from chatrepl.repl.secret_shapes import looks_like_secret
from chatrepl.repl.state import ReplState
from chatrepl.ui.safe_text import sanitize

# History entries longer than this (big pastes) are kept neither in the history file nor in
# memory: the file is read whole at every start, and every keystroke's suggestion scans them.
MAX_HISTORY_ENTRY = 100_000
STYLE = Style.from_dict(
    {
        "mode.chat": "ansigreen bold",
        "mode.complete": "ansimagenta bold",
        "bottom-toolbar": "noreverse ansibrightblack",
    }
)


class SecretFilteringHistory(FileHistory):
    """A FileHistory that never writes lines that look like secrets, nor keeps huge pastes."""

    def append_string(self, string: str) -> None:
        """Remember a line, in memory and in the file, unless it is a huge paste."""
        if len(string) <= MAX_HISTORY_ENTRY:
            super().append_string(string)

    def store_string(self, string: str) -> None:
        """Append to the file unless the line looks like it holds a secret."""
        if not looks_like_secret(string):
            super().store_string(string)


class SlashCompleter(Completer):
    """Completes command names after '/', then each command's own arguments."""

    def __init__(self, state: ReplState) -> None:
        self.state = state
        self._offered = ""  # the text a failed turn put back in the line

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
        if command and command.complete_path:
            yield from self._paths(arg, event)

    def _names(self, prefix: str) -> Iterable[Completion]:
        for command in commands.COMMANDS:
            for name in (command.name, *command.aliases):
                if name.startswith(prefix):
                    yield Completion(
                        f"/{name}", start_position=-len(prefix) - 1, display_meta=command.help
                    )

    def _paths(self, arg: str, event: CompleteEvent) -> Iterable[Completion]:
        """File paths completing the argument's last word (`~` expanded)."""
        from prompt_toolkit.completion import PathCompleter

        word = arg.rsplit(" ", 1)[-1]
        paths = PathCompleter(expanduser=True)
        for found in paths.get_completions(Document(word, len(word)), event):
            # A file name is shown safely in the menu: it may hold control characters.
            yield Completion(found.text, found.start_position, display=sanitize(found.display_text))

    def _values(self, complete: commands.Completions) -> list[str]:
        try:
            return complete(self.state)
        except ChatReplError:  # e.g. the server is down: no completions, no noise
            return []


def _matching(values: list[str], typed: str) -> Iterable[Completion]:
    for value in values:
        if value.startswith(typed):
            # A model or session name may come from a server: shown safely in the menu.
            yield Completion(value, start_position=-len(typed), display=sanitize(value))


def key_bindings(offered: Callable[[], str] = lambda: "") -> KeyBindings:
    """Enter sends; Esc Enter (Alt-Enter) inserts a newline. Text offered again after a failed
    turn (`offered()`) is replaced by the first character typed while it is untouched."""
    bindings = KeyBindings()

    @Condition
    def untouched_offer() -> bool:
        buffer = get_app().current_buffer
        text = offered()
        return bool(text) and buffer.text == text and buffer.cursor_position == len(text)

    @bindings.add(Keys.Any, filter=untouched_offer)
    def _replace_offer(event: Any) -> None:
        event.current_buffer.text = ""
        event.current_buffer.insert_text(event.data)

    @bindings.add("enter")
    def _send(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def _vi_mode() -> str:
    """INSERT, NORMAL, REPLACE or VISUAL, as vi shows it."""
    from prompt_toolkit.application.current import get_app
    from prompt_toolkit.key_binding.vi_state import InputMode

    app = get_app()
    if app.current_buffer.selection_state is not None:
        return "VISUAL"
    names = {InputMode.NAVIGATION: "NORMAL", InputMode.REPLACE: "REPLACE"}
    return names.get(app.vi_state.input_mode, "INSERT")


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
        private_file(history_path)  # 0600: it holds everything typed
        self.session: PromptSession[str] = PromptSession(
            history=SecretFilteringHistory(str(history_path)),
            auto_suggest=AutoSuggestFromHistory(),
            completer=SlashCompleter(state),
            complete_in_thread=True,
            key_bindings=key_bindings(lambda: self._offered),
            multiline=True,
            prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
            bottom_toolbar=self._toolbar,
            vi_mode=state.settings.editing_mode == "vi",
            enable_open_in_editor=True,  # Ctrl-X Ctrl-E (emacs), v (vi normal mode)
            style=STYLE,
            input=input,
            output=output,
        )
        use_linear_paste(self.session.input)

    def read(self, default: str = "", on_shown: Callable[[], None] | None = None) -> str:
        """One message; raises KeyboardInterrupt on Ctrl-C and EOFError on Ctrl-D.

        on_shown runs once the prompt is on screen, so slow set-up started there (such as
        importing openai in a thread) does not compete with drawing the first prompt.
        """
        self._offered = default
        if on_shown is None:
            return self.session.prompt(self._message, default=default)
        return self.session.prompt(
            self._message, default=default, pre_run=lambda: self._after_first_render(on_shown)
        )

    def redraw(self) -> None:
        """Draw the prompt again (its toolbar changed); safe from any thread."""
        app = self.session.app
        if app.is_running:
            app.invalidate()

    def call_in_prompt(self, action: Callable[[], None]) -> None:
        """Run `action` in the running prompt's event loop, from any thread; dropped when no
        prompt is running by then (the caller's state must say what is still to do)."""
        app = self.session.app
        loop, context = app.loop, app.context
        if loop is None or context is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(action, context=context.copy())

    def abort(self, error: BaseException) -> None:
        """End the running prompt: `read` raises `error` (in the prompt's event loop only)."""
        app = self.session.app
        if app.is_running and not app.is_done:
            app.exit(exception=error)

    def print_above(
        self, action: Callable[[], None], then: Callable[[], None] | None = None
    ) -> None:
        """Run `action` (which prints) above the prompt on screen, then redraw the prompt; and
        `then` once the keyboard is back in raw mode (in cooked mode a Ctrl-D is lost)."""
        from prompt_toolkit.application import run_in_terminal

        done = run_in_terminal(action)
        if then is not None:
            done.add_done_callback(lambda _: then())

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
            f"{conversation.message_count} messages",
        ]
        if conversation.mode == "complete" and conversation.suffix:
            parts.append(f"suffix {conversation.suffix!r}")
        if conversation.json_mode and conversation.mode == "chat":
            parts.append("JSON")
        if self.state.pending:
            parts.append(f"{len(self.state.pending)} attached (/file)")
        if self.state.meter_text:
            parts.append(self.state.meter_text)
        if self.state.settings.editing_mode == "vi":
            parts.insert(0, _vi_mode())
        return sanitize(" · ".join(parts)) + " · /help · Esc Enter: newline"
