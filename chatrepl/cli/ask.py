"""`chatrepl ask`: one prompt, one reply, then exit. Plain unbuffered text when piped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from rich.console import Console

from chatrepl.backends.base import Backend
from chatrepl.cli.build import backend_for, new_conversation
from chatrepl.config import Overrides, Settings, load_settings, sessions_dir
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import MODES, Mode
from chatrepl.conversation.store import SessionStore
from chatrepl.engine.turn import Turn, TurnOutcome, TurnRunner
from chatrepl.errors import CommandError
from chatrepl.ui import views
from chatrepl.ui.stream_render import make_renderer


@dataclass(frozen=True)
class AskOptions:
    """Everything `chatrepl ask` was given on the command line."""

    words: list[str] = field(default_factory=list)
    piped: str | None = None
    mode: str = "chat"
    model: str | None = None
    system: str | None = None
    suffix: str | None = None
    stream: bool = True
    json_output: bool = False
    json_mode: bool = False
    session: str | None = None
    max_tokens: int | None = None
    backend: str | None = None
    model_path: str | None = None
    debug: bool = False

    @property
    def prompt(self) -> str:
        """Piped stdin first, then the prompt words: `cat notes.txt | chatrepl ask summarize`."""
        prompt = " ".join(self.words).strip()
        piped = (self.piped or "").strip()
        return f"{piped}\n\n{prompt}" if piped and prompt else piped or prompt

    def overrides(self) -> Overrides:
        """The settings these options override."""
        complete = self.mode == "complete"
        return Overrides(
            backend=self.backend,
            model_path=self.model_path,
            debug=self.debug or None,
            max_tokens=self.max_tokens if complete else None,
            chat_max_tokens=None if complete else self.max_tokens,
        )


def run_ask(options: AskOptions, out: Console | None = None, err: Console | None = None) -> bool:
    """Answer one prompt; True when the person interrupted the reply."""
    prompt = options.prompt
    if not prompt:
        raise CommandError("nothing to ask: give a prompt or pipe text into chatrepl ask")
    if options.mode not in MODES:
        raise CommandError(f"unknown mode {options.mode!r}: use chat or complete")
    settings = load_settings(options.overrides())
    store = SessionStore(sessions_dir()) if options.session else None
    conversation = _saved_conversation(store, options.session)
    backend = backend_for(settings, conversation)
    conversation = conversation or new_conversation(settings, backend, name=options.session)
    _apply(options, conversation, backend)
    out = out or Console(highlight=False)
    outcome = _answer(options, conversation, settings, backend, out, store)
    _footer(err or Console(stderr=True), outcome)
    if outcome.error is not None:
        raise outcome.error
    return outcome.interrupted


def _answer(
    options: AskOptions,
    conversation: Conversation,
    settings: Settings,
    backend: Backend,
    out: Console,
    store: SessionStore | None,
) -> TurnOutcome:
    mode: Mode = conversation.mode
    markdown = mode == "chat" and out.is_terminal and not os.environ.get("NO_COLOR")
    streaming = options.stream and not options.json_output
    checkpoint = (lambda: store.save(conversation)) if store is not None else None
    runner = TurnRunner(conversation, backend, settings, checkpoint=checkpoint, streaming=streaming)
    turn = Turn(options.prompt, mode)
    try:
        if streaming:
            with make_renderer(out, markdown=markdown, code_theme=settings.code_theme) as render:
                outcome = runner.take(turn, render)
        else:
            outcome = runner.take(turn, _Discard())
            _print_whole(out, outcome, options.json_output, markdown)
    finally:
        if store is not None and conversation.messages:
            store.save(conversation)
    return outcome


class _Discard:
    def feed(self, text: str) -> None:
        """Nothing is streamed in a whole-reply request."""


def _print_whole(out: Console, outcome: TurnOutcome, json_output: bool, markdown: bool) -> None:
    if json_output:
        out.file.write(json.dumps(outcome.raw, indent=2, ensure_ascii=False) + "\n")
    elif markdown:
        from rich.markdown import Markdown

        out.print(Markdown(outcome.reply.content))
    else:
        text = outcome.reply.content
        out.file.write(text if text.endswith("\n") else text + "\n")
        out.file.flush()


def _saved_conversation(store: SessionStore | None, name: str | None) -> Conversation | None:
    if store is None or name is None or not store.exists(name):
        return None
    return store.load(name)


def _apply(options: AskOptions, conversation: Conversation, backend: Backend) -> None:
    conversation.mode = options.mode  # type: ignore[assignment]
    if options.model:
        conversation.set_model(options.model)
    if options.system:
        conversation.system = options.system
    if options.suffix is not None:
        if options.suffix and not backend.capabilities.suffix:
            raise CommandError(f"the {backend.name} backend's model does not support insertion")
        conversation.suffix = options.suffix or None
    conversation.json_mode = options.json_mode


def _footer(err: Console, outcome: TurnOutcome) -> None:
    if not outcome.started:
        return
    reply = outcome.reply
    if reply.finish_reason == "length" or (reply.usage and err.is_terminal):
        views.reply_footer(err, reply)
