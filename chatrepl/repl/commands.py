"""The slash-commands, declared once: dispatch, /help and tab completion all come from COMMANDS."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatrepl.conversation.messages import MODES
from chatrepl.errors import CommandError
from chatrepl.repl.results import Result, Table
from chatrepl.repl.state import ReplState
from chatrepl.ui.safe_text import one_line

if TYPE_CHECKING:
    from chatrepl.tools.toolbox import Tool, Toolbox

LAST_EXCHANGES = 6  # messages shown after /load and --resume


Handler = Callable[[ReplState, str], Result]
Completions = Callable[[ReplState], list[str]]


def lazy(module: str, name: str) -> Callable[..., Any]:
    """`module.name`, imported when first called: the handlers' modules (and what they import:
    token counting, exports, search) stay out of the REPL's start-up."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(f"chatrepl.repl.{module}"), name)(*args)

    return call


@dataclass(frozen=True)
class Command:
    """One slash-command: name, help, handler, and where its argument completions come from."""

    name: str
    handler: Handler
    help: str
    args: str = ""
    aliases: tuple[str, ...] = ()
    complete: Completions | None = None
    complete_path: bool = False  # the argument's words are file paths


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


def _load(state: ReplState, arg: str) -> Result:
    if not arg:
        raise CommandError("usage: /load NAME (see /sessions)")
    loaded = state.open(arg)  # refused while another chatrepl has it open
    return Result(
        f"loaded {loaded.name}: {len(loaded.messages)} messages, {loaded.mode} mode",
        transcript=loaded.messages[-LAST_EXCHANGES:],
    )


def _sessions(state: ReplState, arg: str) -> Result:
    rows = [
        (one_line(info.name), one_line(info.updated), one_line(info.summary))
        for info in state.store.list()
    ]
    if not rows:
        return Result("no saved sessions yet")
    return Result(table=Table(("session", "updated", "contents"), rows))


def _history(state: ReplState, arg: str) -> Result:
    if not state.conversation.messages:
        return Result("no messages yet")
    return Result(transcript=list(state.conversation.messages), paged=True)


def _retry(state: ReplState, arg: str) -> Result:
    if state.conversation.last_user_index() is None:
        raise CommandError("nothing to retry: no message has been sent yet")
    option, _, model = arg.partition(" ")
    if arg and (option != "--model" or not model.strip()):
        raise CommandError("use /retry, or /retry --model NAME")
    return Result(retry=True, retry_model=model.strip() or None)


def _quit(state: ReplState, arg: str) -> Result:
    return Result(quit=True)


TOOLS_USAGE = "use /tools, /tools on|off, /tools enable|disable|auto NAME"


def _tools(state: ReplState, arg: str) -> Result:
    toolbox = state.tools()
    if toolbox is None:
        raise CommandError("tools are not available in this run")
    action, _, name = arg.partition(" ")
    if action in ("on", "off") and not name:
        toolbox.active = action == "on"
    elif action in ("enable", "disable", "auto") and name.strip():
        _change_tool(toolbox, action, name.strip())
    elif arg:
        raise CommandError(TOOLS_USAGE)
    return _tools_table(state)


def _change_tool(toolbox: Toolbox, action: str, name: str) -> None:
    from chatrepl.errors import ConfigError
    from chatrepl.tools.setup import enable

    try:
        enable(toolbox, name)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    if action == "disable":
        toolbox.enabled.discard(name)
    elif action == "auto":
        toolbox.auto.add(name)


def _tools_table(state: ReplState) -> Result:
    toolbox = state.toolbox
    assert toolbox is not None
    if toolbox.active:
        toolbox.load_sources()
    rows = [
        (
            tool.name,
            tool.source,
            "yes" if tool.name in toolbox.enabled else "no",
            _approval(toolbox, tool),
        )
        for tool in sorted(toolbox.available.values(), key=lambda t: (t.source, t.name))
    ]
    status = f"tools {'on' if toolbox.active else 'off'}"
    if not state.backend.capabilities.tools:
        status += f"; the {state.backend.name} backend's model does not support tools"
    return Result(status, table=Table(("tool", "source", "enabled", "runs"), rows))


def _approval(toolbox: Toolbox, tool: Tool) -> str:
    if tool.safe:
        return "without asking (read-only)"
    if toolbox.auto_all or tool.name in toolbox.auto:
        return "without asking (allowed)"
    return "after asking" + (" (allow-listed commands without)" if tool.pre_approved else "")


def _tool_completions(state: ReplState) -> list[str]:
    toolbox = state.tools()
    names = sorted(toolbox.available) if toolbox else []
    return [
        "on",
        "off",
        *(f"{verb} {name}" for verb in ("enable", "disable", "auto") for name in names),
    ]


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
        complete=lambda state: state.model_completions(),
    ),
    Command(
        "models",
        lazy("preset_commands", "models_command"),
        "list the models the server offers, and the embedded model",
    ),
    Command(
        "role",
        lazy("preset_commands", "role_command"),
        "use a role: its system prompt, model and parameters (alone: list the roles)",
        "[NAME]",
        complete=lazy("preset_commands", "role_names"),
    ),
    Command(
        "profile",
        lazy("preset_commands", "profile_command"),
        "switch to another endpoint profile, keeping the conversation (alone: list them)",
        "[NAME]",
        complete=lazy("preset_commands", "profile_names"),
    ),
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
        "ask the last message again, in the mode it was sent in, optionally with another "
        "model (the old reply stays until the new one arrives)",
        "[--model NAME]",
    ),
    Command(
        "continue",
        lazy("edit_commands", "continue_command"),
        "continue the last reply (cut off or interrupted)",
    ),
    Command(
        "edit",
        lazy("edit_commands", "edit_command"),
        "edit the last message in $VISUAL/$EDITOR and ask it again (the old reply stays "
        "until the new one arrives)",
    ),
    Command(
        "fork",
        lazy("edit_commands", "fork_command"),
        "copy the conversation into a new session and go on there",
        "[NAME]",
    ),
    Command(
        "undo",
        lazy("edit_commands", "undo_command"),
        "remove the last N exchanges (default 1)",
        "[N]",
    ),
    Command(
        "set",
        lazy("edit_commands", "set_command"),
        "show the generation parameters; set one, or reset it to the default",
        "[NAME [VALUE]]",
        complete=lambda state: list(importlib.import_module("chatrepl.parameters").BY_NAME),
    ),
    Command(
        "file",
        lazy("attach_commands", "file_command"),
        "attach text files to the next message (globs welcome); alone: list them; clear: drop them",
        "[PATH...|clear]",
        complete=lambda state: ["clear"],
        complete_path=True,
    ),
    Command(
        "image",
        lazy("attach_commands", "image_command"),
        "attach an image (PNG, JPEG, GIF, WebP) to the next message, for vision models",
        "PATH",
        complete_path=True,
    ),
    Command("new", _new, "start a new conversation (the current one stays saved)"),
    Command(
        "save",
        lazy("text_out_commands", "save_command"),
        "save the session; with a NAME, save a copy under that name and go on in this one",
        "[NAME]",
    ),
    Command(
        "rename",
        lazy("text_out_commands", "rename_command"),
        "rename this session (and its file)",
        "NAME",
    ),
    Command(
        "load", _load, "load a saved session", "NAME", complete=lambda state: state.store.names()
    ),
    Command("sessions", _sessions, "list saved sessions"),
    Command(
        "search",
        lazy("search_commands", "search_command"),
        "search every saved session's messages, best matches first (/load NAME opens one)",
        "TEXT",
    ),
    Command("history", _history, "show this conversation (in a pager when taller than the screen)"),
    Command(
        "copy",
        lazy("text_out_commands", "copy_command"),
        "copy the last reply, its Nth code block, or its last code block, to the clipboard",
        "[N|code]",
        complete=lambda state: ["code"],
    ),
    Command(
        "export",
        lazy("text_out_commands", "export_command"),
        "write this conversation as Markdown or as session JSON (default NAME.md here; "
        "an existing file only with --force)",
        "[md|json] [FILE] [--force]",
        complete=lambda state: ["md", "json"],
    ),
    Command(
        "context",
        lazy("meter_commands", "context_command"),
        "show the context window and what fills it; set the policy or the window",
        "[summarize|trim|off|window N|window auto]",
        complete=lambda state: ["summarize", "trim", "off", "window auto"],
    ),
    Command(
        "compact",
        lazy("meter_commands", "compact_command"),
        "summarize the conversation so far, now",
    ),
    Command(
        "usage",
        lazy("meter_commands", "usage_command"),
        "tokens, cost and speed of this session, by model",
    ),
    Command(
        "tools",
        _tools,
        "list tools; turn them on or off, enable, disable or always allow one",
        "[on|off|enable NAME|disable NAME|auto NAME]",
        complete=_tool_completions,
    ),
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
    import difflib

    close = difflib.get_close_matches(name, list(_BY_NAME), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join('/' + c for c in close)}?" if close else "; try /help"
    return f"unknown command /{name}{hint}"
