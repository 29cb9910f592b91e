"""The REPL: read a line, run a slash-command or send a turn. Owns the Ctrl-C / Ctrl-D policy."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from chatrepl import __version__
from chatrepl.context.prices import warm_up_in_background
from chatrepl.conversation.messages import Message
from chatrepl.engine.attachments import check_sendable
from chatrepl.engine.input_limit import check_input_size
from chatrepl.engine.turn import Sink, Turn, TurnOutcome
from chatrepl.errors import ErrorBoundary
from chatrepl.repl import commands
from chatrepl.repl.prompt import PromptReader
from chatrepl.repl.state import ReplState
from chatrepl.repl.tool_ui import ReplToolUI, StepSink
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
        self.tool_ui = ReplToolUI(console)
        state.notify = self.notice
        state.backend.on_notice = self.notice  # e.g. each retry, as a dim line

    def run(self) -> None:
        """Loop until /quit, quit, exit or Ctrl-D. Ctrl-C at the prompt only clears the line."""
        self.show_banner()
        try:
            self._loop()
        finally:
            self.state.close()  # its sessions unlocked for other chatrepl processes
            if self.state.toolbox is not None:
                self.state.toolbox.close()

    def _loop(self) -> None:
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
        self.state.fetch_models_in_background()  # /model completes from it
        warm_up_in_background()
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
                if stripped.startswith("//"):  # `//text` sends `/text`
                    self.send(text.lstrip()[1:])
                elif stripped.startswith("/"):
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
            self.retry(outcome.retry_model, outcome.retry_text)
        elif outcome.continue_reply:
            self.continue_reply()
        else:
            self.autosave()  # /undo, /set, /system ... are saved at once
        return not outcome.quit

    def show(self, outcome: commands.Result) -> None:
        """Show what a slash-command returned."""
        if outcome.message:
            view.info(self.console, outcome.message)
        if outcome.table:
            self.console.print(view.table(outcome.table.headers, outcome.table.rows))
        if outcome.transcript:
            self.show_transcript(outcome.transcript, paged=outcome.paged)
        if outcome.clip is not None:
            from chatrepl.ui import clipboard

            clip = outcome.clip
            view.info(self.console, clipboard.copy(self.console, clip.text, clip.what))

    def show_transcript(self, messages: list[Message], paged: bool = False) -> None:
        """Messages as an exchange; `paged`: through the pager when taller than the screen."""
        theme = self.state.settings.code_theme
        if not paged:
            view.transcript(self.console, messages, theme)
            return
        from chatrepl.ui.pager import show_paged

        show_paged(self.console, lambda console: view.transcript(console, messages, theme))

    def send(self, text: str) -> None:
        """Send one turn; on failure the conversation is as it was and the text offered again."""
        check_input_size(text, self.state.settings.max_input_bytes)  # too large: never offered
        state = self.state
        mode = state.conversation.mode
        attached = tuple(state.pending)  # /file, /image: they go with this message
        check_sendable(attached, mode, state.backend.capabilities.images, state.backend.name)
        runner = state.runner(checkpoint=self.autosave)
        turn = Turn(text, mode, attachments=attached)
        self._stream(mode, text, lambda sink: runner.take(turn, sink))
        state.pending.clear()  # sent (a failed turn keeps them for the next try)

    def retry(self, model: str | None = None, text: str | None = None) -> None:
        """Ask the last user message again (or `text` in its place); the old reply stays until
        the new one arrives."""
        conversation = self.state.conversation
        index = conversation.last_user_index()
        if index is None:
            return
        mode = conversation.messages[index].mode
        runner = self.state.runner()
        self._stream(mode, text or "", lambda sink: runner.retry(sink, model, text))

    def continue_reply(self) -> None:
        """Continue the last reply; its new text joins the same message."""
        mode = self.state.conversation.messages[-1].mode
        self._stream(mode, "", self.state.runner().extend)

    def _stream(self, mode: str, text: str, action: Callable[[Sink], TurnOutcome]) -> None:
        state = self.state
        json_reply = mode == "chat" and state.conversation.json_mode
        sink = StepSink(
            lambda: make_renderer(
                self.console,
                markdown=mode == "chat",
                code_theme=state.settings.code_theme,
                code="json" if json_reply else None,
            )
        )
        self.tool_ui.sink = sink
        try:
            waiting = view.Waiting(self.console, sink, state.conversation.model_for(mode))
            sink.on_pause = waiting.stop
            with typeahead_hidden(), waiting:
                try:
                    outcome = action(waiting)
                finally:
                    sink.pause()
        except BaseException:
            self.prefill = text
            self.autosave()
            raise
        finally:
            self.tool_ui.sink = None
        self.autosave()
        if outcome.error is not None:
            view.error(self.console, str(outcome.error))
        cost = self.state.meter.cost_of(outcome.reply) if outcome.started else None
        view.turn_footer(self.console, outcome, cost)
        self.refresh_meter()

    def refresh_meter(self) -> None:
        """The toolbar's context and cost figures; counting never stops the chat."""
        with ErrorBoundary(lambda line: None):
            self.state.refresh_meter()

    def notice(self, line: str) -> None:
        """A dim line during a turn (a summary made, messages left out, a retry)."""
        if self.tool_ui.sink is not None:
            self.tool_ui.sink.pause()
        view.info(self.console, line)

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
        toolbox = state.toolbox
        if toolbox is not None and toolbox.active and not state.backend.capabilities.tools:
            view.info(
                self.console,
                f"tools are configured, but the {state.backend.name} backend's model does not "
                "support them: none are sent",
            )
        self.pending_transcript = conversation.messages[-commands.LAST_EXCHANGES :]
