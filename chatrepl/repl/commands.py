"""The slash-commands, declared once: dispatch, /help and tab completion all come from COMMANDS."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from chatrepl.conversation.messages import MODES, Message
from chatrepl.errors import CommandError
from chatrepl.repl.state import ReplState

LAST_EXCHANGES = 6  # messages shown after /load and --resume


@dataclass(frozen=True)
class Table:
    """Rows for the app to show as a table."""

    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]


@dataclass(frozen=True)
class Result:
    """What a command hands back for the app to show."""

    message: str | None = None
    table: Table | None = None
    transcript: list[Message] = field(default_factory=list)
    quit: bool = False
    retry: bool = False  # the app should ask the last user message again


Handler = Callable[[ReplState, str], Result]
Completions = Callable[[ReplState], list[str]]


@dataclass(frozen=True)
class Command:
    """One slash-command: name, help, handler, and where its argument completions come from."""

    name: str
    handler: Handler
    help: str
    args: str = ""
    aliases: tuple[str, ...] = ()
    complete: Completions | None = None


def _help(state: ReplState, arg: str) -> Result:
    rows = [(" ".join(f"/{n}" for n in (c.name, *c.aliases)), c.args, c.help) for c in COMMANDS]
    rows.append(("Esc Enter / Alt-Enter", "", "insert a newline; Enter sends"))
    rows.append(("Ctrl-C / Ctrl-D", "", "stop a reply or clear the line / leave"))
    return Result(table=Table(("command", "argument", "what it does"), rows))


def _set_mode(mode: str) -> Handler:
    def handler(state: ReplState, arg: str) -> Result:
        state.conversation.mode = mode  # type: ignore[assignment]
        return Result(f"{mode} mode, model {state.conversation.model}")

    return handler


def _mode(state: ReplState, arg: str) -> Result:
    if not arg:
        return Result(f"mode: {state.conversation.mode} (model {state.conversation.model})")
    if arg not in MODES:
        raise CommandError(f"unknown mode {arg!r}: use {' or '.join(MODES)}")
    return _set_mode(arg)(state, "")


def _model(state: ReplState, arg: str) -> Result:
    conversation = state.conversation
    if arg:
        conversation.set_model(arg)
    return Result(f"{conversation.mode} model: {conversation.model}")


def _models(state: ReplState, arg: str) -> Result:
    return Result(table=Table(("model",), [(name,) for name in state.models()]))


def _backend(state: ReplState, arg: str) -> Result:
    return Result(f"backend: {state.backend.name} ({state.backend.describe()})")


def _system(state: ReplState, arg: str) -> Result:
    conversation = state.conversation
    if arg == "clear":
        conversation.system = None
    elif arg:
        conversation.system = arg
    return Result(f"system prompt: {conversation.system or '(none)'}")


def _suffix(state: ReplState, arg: str) -> Result:
    if arg and not state.backend.capabilities.suffix:
        raise CommandError(
            f"the {state.backend.name} backend's model does not support insertion (suffix)"
        )
    state.conversation.suffix = arg or None
    return Result(f"suffix: {arg!r}" if arg else "suffix cleared")


def _json(state: ReplState, arg: str) -> Result:
    if arg not in ("", "on", "off"):
        raise CommandError("use /json on or /json off")
    if arg:
        state.conversation.json_mode = arg == "on"
    shown = "on" if state.conversation.json_mode else "off"
    return Result(f"JSON mode (response_format json_object, chat mode): {shown}")


def _new(state: ReplState, arg: str) -> Result:
    state.new_conversation()
    return Result("new conversation")


def _save(state: ReplState, arg: str) -> Result:
    conversation, store = state.conversation, state.store
    old = conversation.name
    if arg and old and arg != old and store.exists(old):
        store.save(conversation)
        store.rename(old, arg)
        conversation.name = arg
    elif arg:
        conversation.name = arg
        try:
            store.save(conversation)
        except Exception:
            conversation.name = old
            raise
    else:
        store.save(conversation)
    return Result(f"saved as {conversation.name} ({store.path(conversation.name)})")


def _load(state: ReplState, arg: str) -> Result:
    if not arg:
        raise CommandError("usage: /load NAME (see /sessions)")
    state.save()
    state.conversation = state.store.load(arg)
    loaded = state.conversation
    return Result(
        f"loaded {loaded.name}: {len(loaded.messages)} messages, {loaded.mode} mode",
        transcript=loaded.messages[-LAST_EXCHANGES:],
    )


def _sessions(state: ReplState, arg: str) -> Result:
    rows = [(info.name, info.updated, info.summary) for info in state.store.list()]
    if not rows:
        return Result("no saved sessions yet")
    return Result(table=Table(("session", "updated", "contents"), rows))


def _history(state: ReplState, arg: str) -> Result:
    if not state.conversation.messages:
        return Result("no messages yet")
    return Result(transcript=list(state.conversation.messages))


def _retry(state: ReplState, arg: str) -> Result:
    if state.conversation.last_user_index() is None:
        raise CommandError("nothing to retry: no message has been sent yet")
    return Result(retry=True)


def _quit(state: ReplState, arg: str) -> Result:
    return Result(quit=True)


COMMANDS: tuple[Command, ...] = (
    Command("help", _help, "show this help", aliases=("?",)),
    Command("chat", _set_mode("chat"), "switch to chat mode (Chat Completions, with history)"),
    Command("complete", _set_mode("complete"), "switch to completion mode (legacy Completions)"),
    Command(
        "mode", _mode, "show or set the mode", "[chat|complete]", complete=lambda state: list(MODES)
    ),
    Command(
        "model",
        _model,
        "show or set the model of the current mode",
        "[NAME]",
        complete=lambda state: state.models(),
    ),
    Command("models", _models, "list the models the server offers"),
    Command("backend", _backend, "show the backend and where replies come from"),
    Command(
        "system", _system, "show or set the system prompt (/system clear removes it)", "[TEXT]"
    ),
    Command(
        "suffix", _suffix, "set the completion-mode insertion suffix (alone: clear it)", "[TEXT]"
    ),
    Command(
        "json",
        _json,
        "ask for JSON replies in chat mode",
        "[on|off]",
        complete=lambda state: ["on", "off"],
    ),
    Command(
        "retry",
        _retry,
        "ask the last message again, in the mode it was sent in (the old reply stays until "
        "the new one arrives)",
    ),
    Command("new", _new, "start a new conversation (the current one stays saved)"),
    Command("save", _save, "save the session, optionally under a new name", "[NAME]"),
    Command(
        "load", _load, "load a saved session", "NAME", complete=lambda state: state.store.names()
    ),
    Command("sessions", _sessions, "list saved sessions"),
    Command("history", _history, "show this conversation"),
    Command("quit", _quit, "leave (also /exit, quit, exit, Ctrl-D)", aliases=("exit",)),
)
_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


def find(name: str) -> Command | None:
    """The command called `name` (without the slash), or None."""
    return _BY_NAME.get(name)


def names() -> list[str]:
    """Every command name and alias, with its slash."""
    return [f"/{name}" for name in _BY_NAME]


def dispatch(state: ReplState, line: str) -> Result:
    """Run the slash-command in `line`; unknown ones raise CommandError naming the closest."""
    name, _, arg = line.lstrip()[1:].partition(" ")
    command = find(name)
    if command is None:
        raise CommandError(unknown_command_message(name))
    return command.handler(state, arg.strip())


def unknown_command_message(name: str) -> str:
    """`unknown command /x` plus the closest real commands."""
    close = difflib.get_close_matches(name, list(_BY_NAME), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join('/' + c for c in close)}?" if close else "; try /help"
    return f"unknown command /{name}{hint}"
