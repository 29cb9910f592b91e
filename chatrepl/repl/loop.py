"""The REPL: read a line, run a slash-command or send a turn. Owns the Ctrl-C / Ctrl-D policy."""

from __future__ import annotations

from rich.console import Console

from chatrepl import __version__, commands, view
from chatrepl.errors import BackendError, ChatReplError, describe_unexpected
from chatrepl.prompt import PromptReader
from chatrepl.render import make_renderer
from chatrepl.state import ReplState
from chatrepl.terminal import typeahead_hidden
from chatrepl.turns import add_user_message, stream_turn

QUIT_WORDS = ("quit", "exit")


class Repl:
    """A chat loop over injected state, console and prompt."""

    def __init__(self, state: ReplState, console: Console, reader: PromptReader) -> None:
        self.state = state
        self.console = console
        self.reader = reader
        self.prefill = ""  # text put back in the input line after a failed turn

    def run(self) -> None:
        """Loop until /quit, quit, exit or Ctrl-D. Ctrl-C at the prompt only clears the line."""
        self.show_banner()
        while True:
            try:
                text = self.reader.read(default=self.prefill, on_shown=self.state.backend.prepare)
            except KeyboardInterrupt:
                self.prefill = ""
                continue
            except EOFError:
                break
            self.prefill = ""
            if not self.handle_line(text):
                break

    def handle_line(self, text: str) -> bool:
        """Act on one input; False means leave. Errors are one line and the loop goes on."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.lower() in QUIT_WORDS:
            return False
        try:
            if stripped.startswith("/"):
                return self.run_command(stripped)
            self.send(text)
        except ChatReplError as failure:
            view.error(self.console, str(failure))
        except KeyboardInterrupt:
            view.info(self.console, "(cancelled)")
        except Exception as failure:
            if self.state.settings.debug:
                raise
            view.error(self.console, describe_unexpected(failure))
        return True

    def run_command(self, line: str) -> bool:
        """Dispatch a slash-command and show its result."""
        outcome = commands.dispatch(self.state, line)
        view.result(self.console, outcome, self.state.settings.code_theme)
        if outcome.resend is not None:
            self.send(outcome.resend)
        return not outcome.quit

    def send(self, text: str) -> None:
        """Send one turn; on failure the conversation is restored and the text offered again."""
        state = self.state
        add_user_message(state.conversation, text, state.backend)
        self.autosave()
        renderer = make_renderer(
            self.console,
            markdown=state.conversation.mode == "chat",
            code_theme=state.settings.code_theme,
        )
        try:
            waiting = view.Waiting(self.console, renderer, state.conversation.model)
            with typeahead_hidden(), renderer, waiting:
                outcome = stream_turn(state.conversation, state.settings, state.backend, waiting)
        except BackendError:
            self.prefill = text
            self.autosave()
            raise
        self.autosave()
        view.reply_footer(self.console, outcome.reply)

    def autosave(self) -> None:
        """Save after every change; a failure is reported but never loses the conversation."""
        try:
            self.state.save()
        except ChatReplError as failure:
            view.error(self.console, f"autosave failed: {failure}")

    def show_banner(self) -> None:
        """The start-up status line: backend, model, mode, session."""
        state = self.state
        conversation = state.conversation
        where = "embedded" if state.backend.name == "local" else state.backend.describe()
        view.info(
            self.console,
            f"chatrepl {__version__} · {state.backend.name} {where} · "
            f"model {conversation.model} · {conversation.mode} mode · "
            f"session {conversation.name or '(new)'} · /help for commands, Ctrl-D to leave",
        )
        if conversation.messages:
            view.transcript(
                self.console,
                conversation.messages[-commands.LAST_EXCHANGES :],
                state.settings.code_theme,
            )
