"""The REPL: read a line, run a slash-command or send a turn. Owns the Ctrl-C / Ctrl-D policy."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from chatrepl import __version__
from chatrepl.conversation.messages import Message
from chatrepl.engine.turn import Sink, Turn, TurnOutcome
from chatrepl.errors import ErrorBoundary
from chatrepl.repl import commands
from chatrepl.repl.prompt import PromptReader
from chatrepl.repl.state import ReplState
from chatrepl.ui import views as view
from chatrepl.ui.stream_render import make_renderer
from chatrepl.ui.terminal import typeahead_hidden

QUIT_WORDS = ("quit", "exit")


class Repl:
    """A chat loop over injected state, console and prompt."""

    def __init__(self, state: ReplState, console: Console, reader: PromptReader) -> None:
        self.state = state
        self.console = console
        self.reader = reader
        self.prefill = ""  # text put back in the input line after a failed turn
        # A resumed session's last exchanges, shown once the first prompt is on screen.
        self.pending_transcript: list[Message] = []

    def run(self) -> None:
        """Loop until /quit, quit, exit or Ctrl-D. Ctrl-C at the prompt only clears the line."""
        self.show_banner()
        while True:
            try:
                text = self.reader.read(default=self.prefill, on_shown=self.prompt_shown)
            except KeyboardInterrupt:
                self.prefill = ""
                continue
            except EOFError:
                break
            finally:
                self.show_pending_transcript()
            self.prefill = ""
            if not self.handle_line(text):
                break

    def prompt_shown(self) -> None:
        """Once the prompt is on screen: start slow set-up, show what a resume left to show."""
        self.state.backend.prepare()
        if self.pending_transcript:
            self.reader.print_above(self.show_pending_transcript)

    def show_pending_transcript(self) -> None:
        """A resumed session's last exchanges (Markdown costs ~0.1 s to import: it waits for the
        prompt to be on screen first)."""
        messages, self.pending_transcript = self.pending_transcript, []
        if messages:
            view.transcript(self.console, messages, self.state.settings.code_theme)

    def handle_line(self, text: str) -> bool:
        """Act on one input; False means leave. Errors are one line and the loop goes on."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.lower() in QUIT_WORDS:
            return False
        keep_going = True
        with ErrorBoundary(lambda line: view.error(self.console, line), self.state.settings.debug):
            try:
                if stripped.startswith("/"):
                    keep_going = self.run_command(stripped)
                else:
                    self.send(text)
            except KeyboardInterrupt:
                view.info(self.console, "(cancelled)")
        return keep_going

    def run_command(self, line: str) -> bool:
        """Dispatch a slash-command and show its result."""
        outcome = commands.dispatch(self.state, line)
        self.show(outcome)
        if outcome.retry:
            self.retry()
        return not outcome.quit

    def show(self, outcome: commands.Result) -> None:
        """Show what a slash-command returned."""
        if outcome.message:
            view.info(self.console, outcome.message)
        if outcome.table:
            self.console.print(view.table(outcome.table.headers, outcome.table.rows))
        if outcome.transcript:
            view.transcript(self.console, outcome.transcript, self.state.settings.code_theme)

    def send(self, text: str) -> None:
        """Send one turn; on failure the conversation is as it was and the text offered again."""
        mode = self.state.conversation.mode
        runner = self.state.runner(checkpoint=self.autosave)
        self._stream(mode, text, lambda sink: runner.take(Turn(text, mode), sink))

    def retry(self) -> None:
        """Ask the last user message again; the old reply stays until the new one arrives."""
        conversation = self.state.conversation
        index = conversation.last_user_index()
        if index is None:
            return
        mode = conversation.messages[index].mode
        runner = self.state.runner()
        self._stream(mode, "", runner.retry)

    def _stream(self, mode: str, text: str, action: Callable[[Sink], TurnOutcome]) -> None:
        state = self.state
        renderer = make_renderer(
            self.console, markdown=mode == "chat", code_theme=state.settings.code_theme
        )
        try:
            waiting = view.Waiting(self.console, renderer, state.conversation.model_for(mode))
            with typeahead_hidden(), renderer, waiting:
                outcome = action(waiting)
        except BaseException:
            self.prefill = text
            self.autosave()
            raise
        self.autosave()
        if outcome.error is not None:
            view.error(self.console, str(outcome.error))
        view.turn_footer(self.console, outcome)

    def autosave(self) -> None:
        """Save after every change; a failure is reported but never loses the conversation."""
        with ErrorBoundary(lambda line: view.error(self.console, f"autosave failed: {line}")):
            self.state.save()

    def show_banner(self) -> None:
        """The start-up status line: backend, model, mode, session."""
        state = self.state
        conversation = state.conversation
        view.info(
            self.console,
            f"chatrepl {__version__} · {state.backend.name} {state.backend.describe()} · "
            f"model {conversation.model} · {conversation.mode} mode · "
            f"session {conversation.name or '(new)'} · /help for commands, Ctrl-D to leave",
        )
        self.pending_transcript = conversation.messages[-commands.LAST_EXCHANGES :]
