"""The Toolbox a run starts with, from the settings: Python functions, MCP servers, built-ins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chatrepl.config import Settings
from chatrepl.errors import ConfigError
from chatrepl.tools.builtins import BUILTINS, builtin_tools
from chatrepl.tools.toolbox import Approver, Toolbox, ToolSource


def build_toolbox(
    settings: Settings,
    notify: Callable[[str], None],
    approve: Approver | None,
    active: bool | None = None,
) -> Toolbox:
    """Every configured tool; on when any source beyond the built-ins is configured (or as
    `active` says). MCP servers are only configured here: they start when tools are needed."""
    toolbox = Toolbox(
        notify=notify,
        approve=approve,
        auto_all=settings.tools_auto,
        result_limit=settings.tool_result_limit,
    )
    for tool in builtin_tools(settings.shell_allow):
        toolbox.add(tool, enabled=False)
    for path in settings.functions:
        from chatrepl.tools.python_functions import load_functions

        for tool in load_functions(Path(path)):
            toolbox.add(tool)
    toolbox.sources.extend(_mcp_servers(settings))
    for name in settings.tools:
        enable(toolbox, name)
    toolbox.active = settings.has_tools if active is None else active
    return toolbox


def enable(toolbox: Toolbox, name: str) -> None:
    """Enable a tool by name; ConfigError lists the known names when it is unknown."""
    if name not in toolbox.available:
        toolbox.load_sources()
    if name not in toolbox.available:
        known = ", ".join(sorted(set(toolbox.available) | set(BUILTINS)))
        raise ConfigError(f"unknown tool {name!r}: known tools are {known}")
    toolbox.enabled.add(name)


def _mcp_servers(settings: Settings) -> list[ToolSource]:
    if not settings.mcp:
        return []
    from chatrepl.tools.mcp_servers import McpServer, ServerConfig

    return [McpServer(ServerConfig.from_table(name, table)) for name, table in settings.mcp.items()]
