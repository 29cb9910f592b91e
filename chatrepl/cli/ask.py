"""`chatrepl ask`: one prompt, one reply, then exit. Plain unbuffered text when piped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from rich.console import Console

from chatrepl.backends.base import Backend
from chatrepl.cli.build import backend_for, new_conversation, session_store
from chatrepl.config import Overrides, Settings, load_settings, request_log_path
from chatrepl.context.fitting import ContextKeeper
from chatrepl.context.meter import Meter
from chatrepl.context.request_log import RequestLog, RequestObserver
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import MODES, Attachment, GenerationParams, Message, Mode
from chatrepl.conversation.store import SessionStore
from chatrepl.engine.attachments import check_sendable, read_image, read_texts
from chatrepl.engine.input_limit import check_input_size, read_limited
from chatrepl.engine.turn import Turn, TurnOutcome, TurnRunner
from chatrepl.errors import CommandError
from chatrepl.parameters import parse
from chatrepl.repl.tool_ui import StepSink
from chatrepl.tools.approval import terminal_approver
from chatrepl.tools.setup import build_toolbox
from chatrepl.tools.toolbox import Toolbox
from chatrepl.ui import views
from chatrepl.ui.safe_text import sanitize, sanitize_json
from chatrepl.ui.stream_render import make_renderer


@dataclass(frozen=True)
class AskOptions:
    """Everything `chatrepl ask` was given on the command line."""

    words: list[str] = field(default_factory=list)
    piped: str | None = None
    stdin: Any = None  # piped standard input, read by run_ask (up to max_input_bytes) into piped
    mode: str = "chat"
    model: str | None = None
    system: str | None = None
    role: str | None = None  # -R NAME
    profile: str | None = None  # --profile NAME
    base_url: str | None = None  # --base-url URL
    suffix: str | None = None
    stream: bool = True
    json_output: bool = False
    json_mode: bool = False
    session: str | None = None
    max_tokens: int | None = None
    backend: str | None = None
    model_path: str | None = None
    timeout: float | None = None
    debug: bool = False
    tools: bool = False  # --tools: every configured tool
    tool_names: tuple[str, ...] = ()  # --tool NAME
    functions: tuple[str, ...] = ()  # --functions FILE
    yes_tools: bool = False
    log: bool = False  # --log
    parameters: tuple[tuple[str, Any], ...] = ()  # --temperature 0.2 ... as (name, value)
    files: tuple[str, ...] = ()  # --file FILE: text files attached
    images: tuple[str, ...] = ()  # --image FILE
    attachments: tuple[Attachment, ...] = ()  # the files and images, read by run_ask

    def turn_params(self) -> GenerationParams | None:
        """The generation parameters given as options, validated like /set's."""
        params = GenerationParams()
        for name, value in self.parameters:
            try:
                params = params.with_value(name, parse(name, value))
            except ValueError as error:
                raise CommandError(str(error)) from None
        return params if params.to_dict() else None

    @property
    def wants_tools(self) -> bool:
        """Whether tools are on for this one answer."""
        return self.tools or bool(self.tool_names or self.functions)

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
            role=self.role,
            profile=self.profile,
            base_url=self.base_url,
            model_path=self.model_path,
            timeout=self.timeout,
            debug=self.debug or None,
            functions=self.functions or None,
            tools=self.tool_names or None,
            tools_auto=self.yes_tools or None,
            log=self.log or None,
            max_tokens=self.max_tokens if complete else None,
            chat_max_tokens=None if complete else self.max_tokens,
        )


def run_ask(options: AskOptions, out: Console | None = None, err: Console | None = None) -> bool:
    """Answer one prompt; True when the person interrupted the reply."""
    if options.mode not in MODES:
        raise CommandError(f"unknown mode {options.mode!r}: use chat or complete")
    settings = load_settings(options.overrides())
    if options.stdin is not None:
        piped = read_limited(options.stdin, settings.max_input_bytes)
        options = replace(options, piped=piped, stdin=None)
    options = replace(options, attachments=_attachments(options, settings))
    if not options.prompt and not options.attachments:
        raise CommandError("nothing to ask: give a prompt or pipe text into chatrepl ask")
    check_input_size(options.prompt, settings.max_input_bytes)
    store = session_store() if options.session else None
    conversation = _saved_conversation(store, options.session)
    backend = backend_for(settings, conversation)
    check_sendable(options.attachments, options.mode, backend.capabilities.images, backend.name)
    conversation = conversation or new_conversation(settings, backend, name=options.session)
    _apply(options, conversation, backend)
    out = out or views.terminal_console()
    err = err or Console(stderr=True, highlight=False)
    backend.on_notice = lambda text: views.info(err, text)  # e.g. each retry, on stderr
    outcome = _answer(options, conversation, settings, backend, out, err, store)
    _footer(err, outcome, Meter(settings, free=backend.capabilities.embedded))
    if outcome.error is not None:
        raise outcome.error
    return outcome.interrupted


def _answer(
    options: AskOptions,
    conversation: Conversation,
    settings: Settings,
    backend: Backend,
    out: Console,
    err: Console,
    store: SessionStore | None,
) -> TurnOutcome:
    mode: Mode = conversation.mode
    markdown = mode == "chat" and out.is_terminal  # NO_COLOR takes colour away, not layout
    streaming = options.stream and not options.json_output
    saver = _TurnSaver(store, conversation) if store is not None else None
    checkpoint = saver.save if saver is not None else None  # the question, before it is sent
    raw = not out.is_terminal  # piped: the reply is data for another program
    code = "json" if conversation.json_mode and mode == "chat" else None
    sink = StepSink(lambda: make_renderer(out, markdown, settings.code_theme, raw=raw, code=code))
    toolbox = _toolbox(options, settings, backend, sink, err)
    meter = Meter(settings, free=backend.capabilities.embedded)
    observe = _request_log(settings, backend, meter)
    runner = TurnRunner(
        conversation,
        backend,
        settings,
        tools=toolbox,
        max_steps=settings.tool_steps,
        checkpoint=checkpoint,
        streaming=streaming,
        context=ContextKeeper(
            conversation, backend, settings, lambda line: views.info(err, line), observe=observe
        ),
        observe=observe,
    )
    turn = Turn(options.prompt, mode, options.attachments, options.turn_params())
    try:
        if streaming:
            try:
                outcome = runner.take(turn, sink)
            finally:
                sink.pause()
        else:
            outcome = runner.take(turn, _Discard())
            _print_whole(out, outcome, options.json_output, markdown)
    finally:
        if toolbox is not None:
            toolbox.close()
        if saver is not None:
            saver.finish()
    return outcome


class _TurnSaver:
    """Saves this answer's turn into its session as the session is on disk at that moment, so
    that concurrent `ask --session` calls never overwrite each other's turns."""

    def __init__(self, store: SessionStore, conversation: Conversation) -> None:
        self.store = store
        self.conversation = conversation
        # What the session held before this answer: its messages and which were summarized.
        self.before = {m.id: m.summarized_by for m in conversation.messages}
        self.written: set[str] = set()  # ids of the turn's messages saved so far

    def save(self) -> None:
        """Put the turn as it is now into the session on disk (reload, merge, save, locked):
        its new messages (a summary too), and the older ones a summary now stands for."""
        turn = [m for m in self.conversation.messages if self._changed(m)]
        self.store.save_turn(self.conversation, turn, replacing=self.written | self._marked())
        self.written.update(message.id for message in turn)

    def _changed(self, message: Message) -> bool:
        return message.id not in self.before or message.summarized_by != self.before[message.id]

    def _marked(self) -> set[str]:
        return {
            m.id for m in self.conversation.messages if m.id in self.before and self._changed(m)
        }

    def finish(self) -> None:
        """The turn's last state: its reply, or its question taken back when it failed."""
        if self.written:
            self.save()


def _attachments(options: AskOptions, settings: Settings) -> tuple[Attachment, ...]:
    """The --file texts (attach_limit in all), then the --image images."""
    texts = read_texts(options.files, settings.attach_limit)
    return (*texts, *(read_image(path) for path in options.images))


def _request_log(settings: Settings, backend: Backend, meter: Meter) -> RequestObserver | None:
    if not settings.log:
        return None
    log = RequestLog(request_log_path(), bodies=settings.log_bodies)
    return RequestObserver(log, backend, meter.cost_of)


def _toolbox(
    options: AskOptions, settings: Settings, backend: Backend, sink: StepSink, err: Console
) -> Toolbox | None:
    """The tools of this one answer: only with --tools, --tool or --functions."""
    if not options.wants_tools:
        return None
    if not backend.capabilities.tools:
        raise CommandError(f"the {backend.name} backend's model does not support tools")

    def notify(line: str) -> None:
        sink.pause()
        views.tool_line(err, line)

    approve = terminal_approver(lambda text: views.info(err, text))
    return build_toolbox(settings, notify, approve, active=True)


class _Discard:
    def feed(self, text: str) -> None:
        """Nothing is streamed in a whole-reply request."""


def _print_whole(out: Console, outcome: TurnOutcome, json_output: bool, markdown: bool) -> None:
    if json_output:
        text = json.dumps(outcome.raw, indent=2, ensure_ascii=False)
        out.file.write((sanitize_json(text) if out.is_terminal else text) + "\n")
    elif markdown:
        out.print(views.markdown(outcome.reply.content))
    else:
        text = outcome.reply.content
        text = sanitize(text) if out.is_terminal else text  # piped: unchanged, as data
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
    if options.suffix and options.mode != "complete":
        raise CommandError("--suffix is for completion mode: add --mode complete")
    if options.suffix is not None:
        if options.suffix and not backend.capabilities.suffix:
            raise CommandError(f"the {backend.name} backend's model does not support insertion")
        conversation.suffix = options.suffix or None
    conversation.json_mode = options.json_mode


def _footer(err: Console, outcome: TurnOutcome, meter: Meter) -> None:
    if outcome.step_limit_reached:
        views.warning(err, "stopped: the tool-call step limit was reached (tool_steps)")
    if not outcome.started:
        return
    reply = outcome.reply
    if reply.finish_reason == "length" or (reply.usage and err.is_terminal):
        views.reply_footer(err, reply, meter.cost_of(reply))
