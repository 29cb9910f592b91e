"""Start-up figures: chatrepl, its baselines and its competitors, interleaved in the same rounds."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Figure, log, median, ratio, seconds
from procs import Probe, ProbeError, interleave, time_to_prompt, wall_time
from tools import (
    ANSWER,
    API_KEY,
    MODEL,
    PROMPT,
    Tool,
    available,
    chatrepl,
    chatrepl_in_venv,
    clean_environment,
)

SECTION = "Start-up"
FIGURES = ("REPL prompt on screen", "--version", f'ask "{PROMPT}"')
SDK_SCRIPT = f"""
import os, openai
client = openai.OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
stream = client.chat.completions.create(
    model="{MODEL}", messages=[{{"role": "user", "content": "{PROMPT}"}}], stream=True
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
"""
# chatrepl holds garbage collection off while it imports (chatrepl/collection.py); the same
# script with collections off shows how much of the lead over the SDK script that is.
SDK_NO_GC = "openai SDK script, collections off"
NO_GC = "import gc; gc.disable()"


@dataclass(frozen=True)
class Results:
    """Median seconds per probe, and what failed or was skipped, with the reason."""

    medians: dict[str, float]
    problems: dict[str, str]
    tools: list[Tool]
    missing: dict[str, str]  # competitors not measured, and why


@contextmanager
def local_server() -> Iterator[Any]:
    """The tests' fake OpenAI server in a thread of this process, on loopback."""
    from tests.fakeserver import FakeOpenAI

    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


def measure(rounds: int, competitors: bool) -> tuple[list[Figure], Results]:
    """Run the start-up probes of chatrepl, its baselines and (optionally) its competitors."""
    with local_server() as server, tempfile.TemporaryDirectory(prefix="chatrepl-bench-") as temp:
        root = Path(temp)
        tools = [chatrepl(server.base_url, root / "chatrepl")]
        missing: dict[str, str] = {}
        if competitors:
            found, missing = available(server.base_url, root)
            own = chatrepl_in_venv(server.base_url, root / "chatrepl-venv")
            tools += ([own] if own else []) + found
        probes = baseline_probes(server) + [p for t in tools for p in tool_probes(t, server)]
        names = ", ".join(t.name for t in tools)
        log(f"start-up: {len(probes)} probes ({names} and baselines), {rounds} rounds …")
        interleave(probes, rounds, log)
    problems = {p.name: p.error for p in probes if p.error is not None}
    medians = {p.name: median(p.times) for p in probes if p.times}
    results = Results(medians, problems, tools, missing)
    return chatrepl_figures(results), results


def baseline_probes(server: Any) -> list[Probe]:
    """What chatrepl's start-up is compared with: bare imports and the plain SDK call."""
    env = clean_environment(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=API_KEY)
    python = sys.executable
    return [
        Probe(
            "import prompt_toolkit", lambda: wall_time([python, "-c", "import prompt_toolkit"], env)
        ),
        Probe("import typer", lambda: wall_time([python, "-c", "import typer"], env)),
        Probe("openai SDK script", asked([python, "-c", SDK_SCRIPT], env, server)),
        Probe(SDK_NO_GC, asked([python, "-c", NO_GC + SDK_SCRIPT], env, server)),
    ]


def tool_probes(tool: Tool, server: Any) -> list[Probe]:
    """A program's three start-up probes."""
    prompt, version, ask = (f"{tool.name}: {figure}" for figure in FIGURES)
    return [
        Probe(prompt, lambda: time_to_prompt(tool.repl, tool.env, tool.prompt)),
        Probe(version, lambda: wall_time(tool.version_argv, tool.env)),
        Probe(ask, asked(tool.ask, tool.env, server)),
    ]


def asked(argv: list[str], env: dict[str, str], server: Any) -> Callable[[], float]:
    """A probe that times one question and checks that the server answered this very run."""

    def run() -> float:
        before = len(server.requests)
        elapsed = wall_time(argv, env, expect=ANSWER)
        if len(server.requests) != before + 1:
            raise ProbeError(f"made {len(server.requests) - before} requests instead of one")
        return elapsed

    return run


def chatrepl_figures(results: Results) -> list[Figure]:
    """chatrepl's start-up targets."""
    got = results.medians
    prompt, version, ask = (got.get(f"chatrepl: {figure}") for figure in FIGURES)
    figures = [
        _absolute(prompt, "REPL prompt on screen in a pty (median)", 0.35, results),
        _relative(
            prompt, got.get("import prompt_toolkit"), "REPL prompt", "import prompt_toolkit", 1.25
        ),
        _relative(version, got.get("import typer"), "`chatrepl --version`", "import typer", 1.3),
        _relative(
            ask,
            got.get("openai SDK script"),
            f'`chatrepl ask "{PROMPT}"`',
            "openai SDK script",
            1.10,
        ),
        _reference(ask, got.get(SDK_NO_GC), f'`chatrepl ask "{PROMPT}"`', SDK_NO_GC),
    ]
    llm_ask = got.get(f"llm: {FIGURES[2]}")
    if llm_ask is not None:
        mine = _compared(results)
        name = f'`chatrepl ask "{PROMPT}"`' + (" (own venv)" if mine != "chatrepl" else "")
        figures.append(_relative(got.get(f"{mine}: {FIGURES[2]}"), llm_ask, name,
                                 "llm prompt", 1.0))  # fmt: skip
    return figures


def _compared(results: Results) -> str:
    """Which chatrepl is compared with the competitors: the one in its own venv, as they are,
    when it was measured; else the main environment's."""
    names = {tool.name for tool in results.tools}
    return "chatrepl-venv" if "chatrepl-venv" in names else "chatrepl"


def _absolute(value: float | None, name: str, limit: float, results: Results) -> Figure:
    """A figure with an absolute limit in seconds."""
    target = f"≤ {seconds(limit)}"
    if value is None:
        return Figure(SECTION, name, _why("chatrepl: " + FIGURES[0], results), target, False)
    return Figure(SECTION, name, seconds(value), target, value <= limit)


def _relative(
    value: float | None, baseline: float | None, name: str, baseline_name: str, limit: float
) -> Figure:
    """A figure that is a ratio to a baseline measured in the same rounds."""
    label = f"{name} vs `{baseline_name}`"
    target = f"≤ {ratio(limit)}"
    if value is None or baseline is None:
        return Figure(SECTION, label, "not measured (see notes)", target, False)
    return Figure(SECTION, label, _versus(value, baseline), target, value / baseline <= limit)


def _reference(
    value: float | None, baseline: float | None, name: str, baseline_name: str
) -> Figure:
    """A ratio to a baseline, shown without a target."""
    label = f"{name} vs `{baseline_name}` (reference)"
    if value is None or baseline is None:
        return Figure(SECTION, label, "not measured (see notes)")
    return Figure(SECTION, label, _versus(value, baseline))


def _versus(value: float, baseline: float) -> str:
    return f"{ratio(value / baseline)} ({seconds(value)} vs {seconds(baseline)})"


def _why(probe: str, results: Results) -> str:
    """Why a probe has no figure."""
    return f"failed: {results.problems.get(probe, 'no runs')}"


def competitor_table(results: Results) -> list[list[str]]:
    """Rows of the competitors table: each figure, per program, with its ratio to chatrepl."""
    missing, mine = results.missing, _compared(results)
    shown = [t for t in results.tools if t.name == mine or not t.name.startswith("chatrepl")]
    header = ["", *(f"{t.name} {t.version}" for t in shown), *missing]
    rows = [header]
    for figure in FIGURES:
        ours = results.medians.get(f"{mine}: {figure}")
        row = [figure]
        for tool in shown:
            row.append(_cell(results, f"{tool.name}: {figure}", ours, tool.name == mine))
        row += [missing[name] if figure == FIGURES[0] else "" for name in missing]
        rows.append(row)
    return rows


def _cell(results: Results, probe: str, ours: float | None, is_ours: bool) -> str:
    """One program's median and its ratio to chatrepl's."""
    value = results.medians.get(probe)
    if value is None:
        return _why(probe, results)
    if is_ours or not ours:
        return seconds(value)
    return f"{seconds(value)} ({ratio(value / ours)} chatrepl)"
