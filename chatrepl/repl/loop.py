"""The REPL: read a line, run a slash-command or send a turn. Owns the Ctrl-C / Ctrl-D policy.

Everything that prints through rich (views, tool_ui, stream_render; rich costs ~50 ms to
import) is imported where it is used: the prompt is on screen first, and `prompt_shown` imports
them in a thread while the user types (the prompt stays responsive; a turn sent sooner waits for
the modules it needs).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatrepl import __version__
from chatrepl.conversation.messages import Message
from chatrepl.engine.attachments import check_sendable
from chatrepl.engine.input_limit import check_input_size
from chatrepl.errors import ErrorBoundary, SessionError
from chatrepl.repl import commands, secret_shapes
from chatrepl.repl.prompt import PromptReader
from chatrepl.repl.state import ReplState
from chatrepl.ui.terminal import print_dim, typeahead_hidden

if TYPE_CHECKING:
    from rich.console import Console

    from chatrepl.conversation.messages import ToolCall
    from chatrepl.engine.turn import Sink, TurnOutcome
    from chatrepl.repl.tool_ui import ReplToolUI
    from chatrepl.tools.toolbox import Approval, Tool

PRINTING_MODULES = (
    "chatrepl.ui.views",
    "chatrepl.ui.stream_render",
    "chatrepl.repl.tool_ui",
    "rich.markdown",
)

QUIT_WORDS = ("quit", "exit")


class Repl:
    """A chat loop over injected state, console and prompt."""

    def __init__(self, state: ReplState, console: Console | None, reader: PromptReader) -> None:
        self.state = state
        self._console = console  # None: the terminal's, made when first printed to
        self._tool_ui: ReplToolUI | None = None
        self.reader = reader
        self.prefill = ""  # text put back in the input line after a failed turn
        self.transcript_due = False  # a resumed session's last exchanges are still to show
        self.drawn_transcript = ""  # and them drawn ahead, in the thread that parsed them
        state.notify = self.notice
        state.backend.on_notice = self.notice  # e.g. each retry, as a dim line

    @property
    def console(self) -> Console:
        """The rich console replies and tables are printed on."""
        if self._console is None:
            from chatrepl.ui.views import terminal_console

            self._console = terminal_console()
        return self._console

    @property
    def tool_ui(self) -> ReplToolUI:
        """How tool calls look during a turn."""
        if self._tool_ui is None:
            from chatrepl.repl.tool_ui import ReplToolUI

            self._tool_ui = ReplToolUI(self.console)
        return self._tool_ui

    def info(self, line: str) -> None:
        """One dim line."""
        from chatrepl.ui.views import info

        info(self.console, line)

    def say(self, line: str) -> None:
        """A dim line before the prompt: without rich, unless its console is already made."""
        if self._console is None:
            print_dim(line)
        else:
            self.info(line)

    def error(self, line: str) -> None:
        """One `error:` line."""
        from chatrepl.ui.views import error

        error(self.console, line)

    def notify_tool(self, line: str) -> None:
        """The Toolbox's `notify`: one line about a tool call."""
        self.tool_ui.notify(line)

    def approve_tool(self, tool: Tool, call: ToolCall) -> Approval:
        """The Toolbox's `approve`: asked on the terminal."""
        return self.tool_ui.approve(tool, call)

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
        """Once the prompt is on screen: a resumed session's last exchanges first, then the slow
        set-up (imports, the model list, the count), which would halve their speed."""
        if self.transcript_due:  # parsed and drawn in a thread, then shown (_session_parsed)
            self.state.parse_in_background(self._prepare_transcript)
        else:
            self._start_slow_setup()

    def _session_parsed(self) -> None:
        """In the prompt, once a resumed session's messages are parsed: its last exchanges
        above the prompt, or (a corrupt file) the prompt ended with the error."""
        try:
            self.state.conversation.load_messages()
        except SessionError as error:
            self.reader.abort(error)
            return
        # The slow set-up waits for the keyboard to be back: its imports would hold the main
        # thread in cooked mode longer, where keys like Ctrl-D are lost.
        self.reader.print_above(self.show_pending_transcript, then=self._start_slow_setup)

    def _start_slow_setup(self) -> None:
        threading.Thread(target=_import_printing, name="chatrepl-warm-up", daemon=True).start()
        secret_shapes.prepare()  # the token shapes the history keeps out
        self.state.backend.prepare()
        self.state.fetch_models_in_background()  # /model completes from it
        self.state.refresh_meter_in_background(self.reader.redraw)
        from chatrepl.context.prices import warm_up_in_background

        warm_up_in_background()

    def _prepare_transcript(self) -> None:
        """In the parse thread: the last exchanges drawn ahead, so that showing them above the
        prompt is one write (the keyboard is in cooked mode meanwhile: a Ctrl-D is lost)."""
        with contextlib.suppress(SessionError):  # _session_parsed reports it
            with self.console.capture() as drawn:
                self._draw_transcript()
            self.drawn_transcript = drawn.get()
        self.reader.call_in_prompt(self._session_parsed)

    def show_pending_transcript(self) -> None:
        """A resumed session's last exchanges, once its messages are parsed (Markdown costs
        ~0.1 s to import: it waits for the prompt to be on screen first)."""
        if not (self.transcript_due and self.state.conversation.messages_ready):
            return
        self.transcript_due = False
        drawn, self.drawn_transcript = self.drawn_transcript, ""
        if drawn:
            self.console.file.write(drawn)
            self.console.file.flush()
            return
        with contextlib.suppress(SessionError):  # reported where the prompt ends, or by settle()
            self._draw_transcript()

    def _draw_transcript(self) -> None:
        messages = self.state.conversation.messages[-commands.LAST_EXCHANGES :]
        if messages:
            from chatrepl.ui.views import transcript

            transcript(self.console, messages, self.state.settings.code_theme)

    def handle_line(self, text: str) -> bool:
        """Act on one input; False means leave. Errors are one line and the loop goes on."""
        try:
            self.state.settle()  # the background count of a resumed session is done
        except KeyboardInterrupt:
            self.prefill = text  # nothing was done: the line is offered again
            self.info("(cancelled)")
            return True
        self.show_pending_transcript()
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.lower() in QUIT_WORDS:
            return False
        keep_going = True
        with ErrorBoundary(lambda line: self.error(line), self.state.settings.debug):
            try:
                if stripped.startswith("//"):  # `//text` sends `/text`
                    self.send(text.lstrip()[1:])
                elif stripped.startswith("/"):
                    keep_going = self.run_command(stripped)
                else:
                    self.send(text)
            except KeyboardInterrupt:
                self.info("(cancelled)")
        return keep_going

    def run_command(self, line: str) -> bool:
        """Dispatch a slash-command and show its result."""
        before = self.state.conversation
        outcome = commands.dispatch(self.state, line)
        self.show(outcome)
        if outcome.retry:
            self.retry(outcome.retry_model, outcome.retry_text)
        elif outcome.continue_reply:
            self.continue_reply()
        else:
            self.autosave()  # /undo, /set, /system ... are saved at once
        if self.state.conversation is not before:  # /load, /fork, /new: count it meanwhile
            self.state.refresh_meter_in_background(self.reader.redraw)
        return not outcome.quit

    def show(self, outcome: commands.Result) -> None:
        """Show what a slash-command returned."""
        if outcome.message:
            self.info(outcome.message)
        if outcome.table:
            from chatrepl.ui.views import table

            self.console.print(table(outcome.table.headers, outcome.table.rows))
        if outcome.transcript:
            self.show_transcript(outcome.transcript, paged=outcome.paged)
        if outcome.clip is not None:
            from chatrepl.ui import clipboard

            clip = outcome.clip
            self.info(clipboard.copy(self.console, clip.text, clip.what))

    def show_transcript(self, messages: list[Message], paged: bool = False) -> None:
        """Messages as an exchange; `paged`: through the pager when taller than the screen."""
        from chatrepl.ui.views import transcript

        theme = self.state.settings.code_theme
        if not paged:
            transcript(self.console, messages, theme)
            return
        from chatrepl.ui.pager import show_paged

        show_paged(self.console, lambda console: transcript(console, messages, theme))

    def send(self, text: str) -> None:
        """Send one turn; on failure the conversation is as it was and the text offered again."""
        check_input_size(text, self.state.settings.max_input_bytes)  # too large: never offered
        state = self.state
        mode = state.conversation.mode
        attached = tuple(state.pending)  # /file, /image: they go with this message
        check_sendable(attached, mode, state.backend.capabilities.images, state.backend.name)
        runner = state.runner(checkpoint=self.autosave)
        from chatrepl.engine.turn import Turn

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
        from chatrepl.repl.tool_ui import StepSink
        from chatrepl.ui import views as view
        from chatrepl.ui.stream_render import make_renderer

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
            self.error(str(outcome.error))
        cost = self.state.meter.cost_of(outcome.reply) if outcome.started else None
        view.turn_footer(self.console, outcome, cost)
        self.refresh_meter()

    def refresh_meter(self) -> None:
        """The toolbar's context and cost figures; counting never stops the chat."""
        with ErrorBoundary(lambda line: None):
            self.state.refresh_meter()

    def notice(self, line: str) -> None:
        """A dim line during a turn (a summary made, messages left out, a retry)."""
        if self._tool_ui is not None and self._tool_ui.sink is not None:
            self._tool_ui.sink.pause()
        self.info(line)

    def autosave(self) -> None:
        """Save after every change; a failure is reported but never loses the conversation."""
        with ErrorBoundary(lambda line: self.error(f"autosave failed: {line}")):
            self.state.save()

    def show_banner(self) -> None:
        """The start-up status line: backend, model, mode, session."""
        state = self.state
        conversation = state.conversation
        self.say(
            f"chatrepl {__version__} · {state.backend.name} {state.backend.describe()} · "
            f"model {conversation.model} · {conversation.mode} mode · "
            f"session {conversation.name or '(new)'} · /help for commands, Ctrl-D to leave"
        )
        toolbox = state.toolbox
        if toolbox is not None and toolbox.active and not state.backend.capabilities.tools:
            self.say(
                f"tools are configured, but the {state.backend.name} backend's model does not "
                "support them: none are sent"
            )
        self.transcript_due = conversation.message_count > 0  # shown once the prompt is up


def _import_printing() -> None:
    """Import what prints replies, so that the first reply does not wait for it."""
    import importlib

    for name in PRINTING_MODULES:
        importlib.import_module(name)
