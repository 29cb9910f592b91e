"""MCP servers' tools, through the official `mcp` SDK (imported only when a server is used).

Each configured server is a lazy ToolSource: the first time tools are needed it is started
(stdio: `command`, `env`; streamable HTTP: `url`) in a background asyncio loop that lives until
chatrepl exits; its tools are listed then and called through the same open session.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from chatrepl.backends.base import ToolSpec
from chatrepl.errors import ConfigError
from chatrepl.tools.toolbox import Tool

START_TIMEOUT = 30.0
CALL_TIMEOUT = 120.0
STOP_TIMEOUT = 5.0
NO_MCP = "MCP servers need the mcp package: pip install 'chatrepl[mcp]'"


@dataclass(frozen=True)
class ServerConfig:
    """One `[mcp.NAME]` table of the config file."""

    name: str
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None

    @classmethod
    def from_table(cls, name: str, table: Any) -> ServerConfig:
        """Validate a config table; ConfigError names what is wrong."""
        where = f"[mcp.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        command, url, env = table.get("command"), table.get("url"), table.get("env", {})
        if isinstance(command, str):
            command = [command]
        if not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
            if not isinstance(url, str):
                raise ConfigError(f'{where} needs command = [...] or url = "..."')
            command = []
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ConfigError(f"{where} env must be a table of strings")
        return cls(name, tuple(command), dict(env), url if isinstance(url, str) else None)


class _Loop:
    """One asyncio loop in a daemon thread, shared by every server."""

    _instance: _Loop | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="mcp", daemon=True).start()

    @classmethod
    def get(cls) -> _Loop:
        with cls._lock:
            if cls._instance is None:
                cls._instance = _Loop()
            return cls._instance

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise


class McpServer:
    """A configured MCP server: started on first use, its tools listed, calls relayed."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.name = f"MCP server {config.name}"
        self._client: Any = None
        self._stop: asyncio.Event | None = None
        self._done = threading.Event()  # the session is closed and the process ended
        self.dead: str | None = None  # why the server is gone, once it is

    def tools(self) -> list[Tool]:
        """Start the server and list its tools (raises with a readable reason)."""
        loop = _Loop.get()
        loop.run(self._start(), START_TIMEOUT)
        listed = loop.run(self._client.list_tools(), START_TIMEOUT)
        return [self._tool(item) for item in listed.tools]

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one of the server's tools; its text content, or an error the model can read."""
        if self.dead:
            return f"error: {self.name} is not running ({self.dead})"
        try:
            result = _Loop.get().run(self._client.call_tool(name, arguments), CALL_TIMEOUT)
        except Exception as error:
            self.dead = f"{type(error).__name__}: {error}"
            raise RuntimeError(f"{self.name} failed: {self.dead}") from error
        text = "\n".join(_content_text(part) for part in result.content)
        return f"error: {text}" if result.is_error else text

    def stop(self, wait: float = STOP_TIMEOUT) -> None:
        """Close the session and end the server's process (waiting a little for it)."""
        if self._stop is not None:
            _Loop.get().loop.call_soon_threadsafe(self._stop.set)
            self._done.wait(wait)

    async def _start(self) -> None:
        if self._client is not None:
            return
        try:
            import mcp
        except ImportError as error:
            raise ConfigError(NO_MCP) from error
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        asyncio.get_running_loop().create_task(self._serve(mcp, ready))
        await ready

    async def _serve(self, mcp: Any, ready: asyncio.Future[None]) -> None:
        """Hold the client's context open until stop() (the SDK's contexts are task-bound)."""
        assert self._stop is not None
        try:
            async with mcp.Client(self._target(mcp)) as client:
                self._client = client
                ready.set_result(None)
                await self._stop.wait()
        except Exception as error:
            self.dead = f"{type(error).__name__}: {error}"
            if not ready.done():
                ready.set_exception(RuntimeError(f"cannot start: {_first_line(error)}"))
        finally:
            self._client = None
            self._done.set()

    def _target(self, mcp: Any) -> Any:
        if self.config.url and not self.config.command:
            return self.config.url
        command, *args = self.config.command
        return mcp.StdioServerParameters(command=command, args=args, env=self.config.env or None)

    def _tool(self, item: Any) -> Tool:
        schema = item.input_schema if isinstance(item.input_schema, dict) else {"type": "object"}
        spec = ToolSpec(item.name, item.description or item.title or item.name, schema)
        return Tool(spec, lambda arguments: self.call(item.name, arguments), self.name)


def _content_text(part: Any) -> str:
    text = getattr(part, "text", None)
    return text if isinstance(text, str) else f"[{getattr(part, 'type', 'content')}]"


def _first_line(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return _first_line(error.exceptions[0])
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
