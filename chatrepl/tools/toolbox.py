"""The Toolbox: every tool chatrepl knows, which are enabled, and running one call safely.

A call is shown as one line, confirmed unless its tool is safe or allowed, run, and its result
(or its error, as text the model can read) cut to a size limit. A Ctrl-C during a run stops the
turn; nothing else a tool does raises out of here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chatrepl.backends.base import ToolSpec
from chatrepl.conversation.messages import ToolCall

DECLINED = "declined by the user: the tool was not run"
SKIPPED = "not run: the user declined an earlier call of this reply"
DEFAULT_RESULT_LIMIT = 20_000  # characters of a result sent back to the model


@dataclass(frozen=True)
class Tool:
    """A callable tool: its spec, the function that runs it, where it came from."""

    spec: ToolSpec
    run: Callable[[dict[str, Any]], Any]
    source: str  # "built-in", "python FILE", "mcp NAME"
    safe: bool = False  # read-only: runs without asking
    # Calls this accepts run without asking too (run_shell's allow-listed prefixes).
    pre_approved: Callable[[dict[str, Any]], bool] | None = None

    @property
    def name(self) -> str:
        """The name the model calls it by."""
        return self.spec.name


@dataclass(frozen=True)
class Approval:
    """The user's answer to "run this call?"; `arguments` replaces the model's when edited."""

    answer: Literal["yes", "no", "always"]
    arguments: str | None = None


class Approver(Protocol):
    """Asks the user whether to run a call."""

    def __call__(self, tool: Tool, call: ToolCall) -> Approval: ...


class ToolSource(Protocol):
    """Where tools come from: loaded when first needed (an MCP server starts then)."""

    name: str

    def tools(self) -> list[Tool]: ...


@dataclass
class Toolbox:
    """Tools by name; which are enabled and auto-approved; the loop's `run`."""

    notify: Callable[[str], None] = print
    approve: Approver | None = None  # None: no one to ask, unsafe calls are refused
    auto_all: bool = False  # --yes-tools / tools_auto
    active: bool = True  # /tools on|off
    result_limit: int = DEFAULT_RESULT_LIMIT
    available: dict[str, Tool] = field(default_factory=dict)
    enabled: set[str] = field(default_factory=set)
    auto: set[str] = field(default_factory=set)
    sources: list[ToolSource] = field(default_factory=list)  # not asked for their tools yet
    started: list[ToolSource] = field(default_factory=list)
    _declined: bool = False

    def add(self, tool: Tool, enabled: bool = True) -> None:
        """Make a tool available (and enabled unless said otherwise)."""
        self.available[tool.name] = tool
        if enabled:
            self.enabled.add(tool.name)

    def load_sources(self) -> None:
        """Ask each lazy source for its tools once; a source that fails is one line."""
        sources, self.sources = self.sources, []
        for source in sources:
            self.started.append(source)
            try:
                for tool in source.tools():
                    self.add(tool)
            except Exception as error:  # a broken server must not stop the chat
                self.notify(f"tools of {source.name} unavailable: {error}")

    def close(self) -> None:
        """Stop what the sources started (MCP servers' processes)."""
        for source in self.started:
            stop = getattr(source, "stop", None)
            if stop is not None:
                stop()

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """The specs sent with a request: every enabled tool, when tools are on."""
        if not self.active:
            return ()
        self.load_sources()
        return tuple(self.available[name].spec for name in sorted(self.enabled))

    def run(self, call: ToolCall) -> str:
        """Confirm and run one call; every failure is a result the model can read."""
        if self._declined:
            return SKIPPED
        tool = self.available.get(call.name) if call.name in self.enabled else None
        if tool is None:
            return self._error(call, f"unknown tool {call.name!r}; available: {self._names()}")
        try:
            self.notify(call_line(call.name, parse_arguments(call.arguments)))
            if not self._allowed(tool, call):
                self._declined = True
                self.notify(f"{tool.name}: not run; the model is told you declined")
                return DECLINED
            arguments = parse_arguments(call.arguments)  # the user may have edited them
        except ValueError as error:
            return self._error(call, str(error))
        return self._cut(self._invoke(tool, arguments))

    def end_of_reply(self) -> bool:
        """After a reply's calls have run: whether the loop must stop (the user declined)."""
        declined, self._declined = self._declined, False
        return declined

    def _allowed(self, tool: Tool, call: ToolCall) -> bool:
        if tool.safe or self.auto_all or tool.name in self.auto:
            return True
        if tool.pre_approved is not None and tool.pre_approved(parse_arguments(call.arguments)):
            return True
        if self.approve is None:
            self.notify(f"{tool.name}: refused (no terminal to confirm; --yes-tools allows it)")
            return False
        approval = self.approve(tool, call)
        if approval.answer == "always":
            self.auto.add(tool.name)
        if approval.arguments is not None:
            call.arguments = approval.arguments
        return approval.answer != "no"

    def _invoke(self, tool: Tool, arguments: dict[str, Any]) -> str:
        try:
            result = tool.run(arguments)
        except Exception as error:
            self.notify(f"{tool.name} failed: {type(error).__name__}: {error}")
            return f"error: {type(error).__name__}: {error}"
        return result if isinstance(result, str) else json.dumps(result, default=str)

    def _cut(self, text: str) -> str:
        if len(text) <= self.result_limit:
            return text
        note = f"\n[result cut: {len(text):,} characters, the first {self.result_limit:,} shown]"
        return text[: self.result_limit] + note

    def _error(self, call: ToolCall, message: str) -> str:
        self.notify(f"tool {call.name}: {message}")
        return f"error: {message}"

    def _names(self) -> str:
        return ", ".join(sorted(self.enabled)) or "none"


def parse_arguments(text: str) -> dict[str, Any]:
    """A call's JSON arguments as a dict; ValueError with a readable reason otherwise."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"arguments are not valid JSON ({error.msg}): {text[:200]}") from None
    if not isinstance(value, dict):
        raise ValueError(f"arguments must be a JSON object, not {type(value).__name__}")
    return value


def call_line(name: str, arguments: dict[str, Any], width: int = 200) -> str:
    """`tool read_file(path="notes.md")`: one line, long values shortened."""
    pairs = (f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items())
    shown = ", ".join(pairs)
    line = f"tool {name}({shown})"
    return line if len(line) <= width else line[: width - 1] + "…"
