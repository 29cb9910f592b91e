"""Tool calling: what a tool round trip costs of chatrepl's own time, and that unused tools
cost nothing at start-up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from common import REPO, Figure, log, median, seconds

SECTION = "Tools"
ROUNDS = 40
UNUSED_PROBE = """
import sys
from rich.console import Console
from chatrepl.cli.build import build_repl
from chatrepl.config import Overrides
build_repl(Overrides(), None, False, Console())
print(",".join(sorted(m for m in ("mcp", "chatrepl.tools.mcp_servers",
                                  "chatrepl.tools.python_functions") if m in sys.modules)))
"""


def measure(rounds: int = ROUNDS) -> list[Figure]:
    """Both figures."""
    return [unused_tools_figure(), round_trip_figure(rounds)]


def unused_tools_figure() -> Figure:
    """Modules a REPL with no tools configured imports that only tools need."""
    from startup_bench import local_server
    from tools import clean_environment

    with local_server() as server:
        env = clean_environment(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        done = subprocess.run(
            [sys.executable, "-c", UNUSED_PROBE], env=env, cwd=REPO, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
    loaded = done.stdout.strip() if done.returncode == 0 else f"failed: {done.stderr[-200:]}"
    return Figure(
        SECTION,
        "tool modules imported by a REPL with no tools configured",
        loaded or "none (no mcp, no MCP server, no functions file)",
        "none",
        done.returncode == 0 and not loaded,
    )


def round_trip_figure(rounds: int) -> Figure:
    """chatrepl's own time per tool round trip, against the fake server and a trivial tool."""
    from startup_bench import local_server

    with local_server() as server:
        run_plain, run_with_tool, sdk_request, tool_time = _probes(server)
        log(f"tools: {rounds} rounds of a plain turn, a turn with one tool call, a bare request …")
        plain, with_tool, bare = [], [], []
        for _ in range(rounds + 1):  # the first round warms up
            plain.append(run_plain())
            with_tool.append(run_with_tool())
            bare.append(sdk_request())
    # A turn with a call makes a request answered with the call, runs the tool, then makes the
    # plain turn's request: what is left is chatrepl's own work for the round trip.
    extra = median(with_tool[1:]) - median(plain[1:]) - median(bare[1:]) - tool_time
    value = (
        f"{seconds(max(extra, 0.0))} (turn with a call {seconds(median(with_tool[1:]))}, "
        f"plain turn {seconds(median(plain[1:]))}, "
        f"bare SDK request answered with a call {seconds(median(bare[1:]))})"
    )
    return Figure(
        SECTION, "chatrepl's own time per tool round trip", value, "< 20 ms", extra < 0.020
    )


def _probes(server) -> tuple[Callable[[], float], Callable[[], float], Callable[[], float], float]:
    from chatrepl.backends.base import ToolSpec
    from chatrepl.backends.openai_backend import OpenAIBackend, build_client
    from chatrepl.config import Settings
    from chatrepl.conversation.conversation import Conversation
    from chatrepl.engine.turn import Turn, TurnRunner
    from chatrepl.tools.toolbox import Tool, Toolbox

    settings = Settings(base_url=server.base_url, api_key="sk-bench", max_retries=0)
    backend = OpenAIBackend(settings)
    toolbox = Toolbox(notify=lambda line: None, auto_all=True)
    toolbox.add(Tool(ToolSpec("echo", "Echo the text."), lambda a: str(a.get("text")), "bench"))
    client = build_client(settings)

    class Quiet:
        def feed(self, text: str) -> None:
            """Discard the text."""

    def turn(with_tool: bool) -> float:
        if with_tool:
            server.queue_tool_calls(("echo", {"text": "hi"}))
        runner = TurnRunner(Conversation(chat_model="gpt-4o-mini"), backend, settings, toolbox)
        started = time.perf_counter()
        runner.take(Turn("hello", "chat"), Quiet())
        return time.perf_counter() - started

    def bare() -> float:
        """The request a tool turn makes beyond a plain one: answered with a tool call."""
        server.queue_tool_calls(("echo", {"text": "hi"}))
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], stream=True
        )
        for _ in stream:
            pass
        return time.perf_counter() - started

    started = time.perf_counter()
    toolbox.available["echo"].run({"text": "hi"})
    tool_time = time.perf_counter() - started
    return (lambda: turn(False)), (lambda: turn(True)), bare, tool_time
