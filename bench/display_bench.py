"""Showing a very long message: `sessions show`, `--resume` and `/history` stay linear."""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
from common import Figure, log, median, seconds
from corpus import reply
from procs import (
    PTY_COLUMNS,
    PTY_ROWS,
    TIMEOUT,
    Probe,
    ProbeError,
    expect_as_a_terminal,
    interleave,
    repl,
    wall_time,
)
from startup_bench import local_server

from chatrepl.conversation.conversation import Conversation, Message
from chatrepl.conversation.store import SessionStore

SECTION = "Long messages"
MEGABYTE = 1_000_000
SIZES = (1 * MEGABYTE, 4 * MEGABYTE, 50 * MEGABYTE)
LARGEST = SIZES[-1]
TARGET = 5.0  # seconds, for the largest message
END = "END-OF-THE-LONG-MESSAGE"  # its last line: a piped `sessions show` must print it
CUT_NOTE = "cut here"  # what a terminal is shown instead of the rest


def long_text(size: int) -> str:
    """Generated Markdown (prose, lists, code, tables) of about `size` characters, then END."""
    block = reply(25_000, seed=3)  # ~100 kB
    return (block * (size // len(block) + 1))[:size] + f"\n\n{END}\n"


def name(size: int) -> str:
    """The session holding a message of this size."""
    return f"long-{size // MEGABYTE}mb"


def save_sessions(store: SessionStore) -> None:
    """One session per size: a question and a reply of that size."""
    for size in SIZES:
        chat = Conversation(name=name(size), chat_model="test-model", backend="openai")
        chat.messages.append(Message("user", "Please write it all out."))
        chat.messages.append(Message("assistant", long_text(size), model="test-model"))
        store.save(chat)


def measure(rounds: int) -> list[Figure]:
    """Every figure of the section."""
    from tools import chatrepl

    with tempfile.TemporaryDirectory(prefix="chatrepl-bench-") as temp, local_server() as server:
        home = Path(temp)
        log(f"long messages: writing sessions of {', '.join(map(str, SIZES))} characters …")
        save_sessions(SessionStore(home / "sessions"))
        tool = chatrepl(server.base_url, home)
        command = tool.repl[0]
        runs = {
            **{f"piped {size}": _show_piped(command, size, tool.env) for size in SIZES},
            "terminal": _show_in_terminal(command, tool.env),
            "resume": _resume(tool.repl, tool.env, tool.prompt),
            # Taller than the screen, the transcript goes to the pager, whole (a pager scrolls):
            # `tail -n 5` reads all 50 MB of it, as a pager would, and ends at once.
            "history": _history(tool.repl, {**tool.env, "PAGER": "tail -n 5"}, tool.prompt),
        }
        cpu: dict[str, list[float]] = {probe: [] for probe in runs}
        probes = [Probe(probe, _with_cpu(run, cpu[probe])) for probe, run in runs.items()]
        log(f"long messages: {rounds} rounds …")
        interleave(probes, rounds, log)
    return [_figure(probe, cpu[probe.name][1:]) for probe in probes]  # warm-up round left out


def _with_cpu(run: Callable[[], float], cpu: list[float]) -> Callable[[], float]:
    """run, also noting the CPU seconds its program used (the machine may be busy)."""

    def measured() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        elapsed = run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return elapsed

    return measured


def _show_piped(command: str, size: int, env: dict[str, str]) -> Callable[[], float]:
    """`chatrepl sessions show NAME` into a pipe: the whole message is written."""
    return lambda: wall_time([command, "sessions", "show", name(size)], env, expect=END)


def _show_in_terminal(command: str, env: dict[str, str]) -> Callable[[], float]:
    """`chatrepl sessions show NAME` in a pseudo-terminal, until it exits."""

    def run() -> float:
        started = time.perf_counter()
        child = _spawn([command, "sessions", "show", name(LARGEST)], env)
        try:
            child.expect(CUT_NOTE)
            child.expect(pexpect.EOF)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            raise ProbeError(f"no cut note ({type(error).__name__})") from None
        finally:
            child.close(force=True)
        return time.perf_counter() - started

    return run


def _resume(argv: list[str], env: dict[str, str], prompt: str) -> Callable[[], float]:
    """The REPL resumed on the session, until its last messages are shown (above the prompt)."""

    def run() -> float:
        started = time.perf_counter()
        with repl([*argv, "--resume", name(LARGEST)], env, prompt) as (child, _):
            expect_as_a_terminal(child, CUT_NOTE)
            return time.perf_counter() - started

    return run


def _history(argv: list[str], env: dict[str, str], prompt: str) -> Callable[[], float]:
    """`/history` in that REPL, from Enter until the prompt is back."""

    def run() -> float:
        with repl([*argv, "--resume", name(LARGEST)], env, prompt) as (child, _):
            started = time.perf_counter()
            child.send("/history\r")
            child.expect(END)  # the transcript's last line, out of the pager
            child.expect(prompt)
            return time.perf_counter() - started

    return run


def _spawn(argv: list[str], env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(
        argv[0], argv[1:], env=env, dimensions=(PTY_ROWS, PTY_COLUMNS),
        encoding="utf-8", codec_errors="replace", timeout=TIMEOUT,
    )  # fmt: skip


LABELS = {
    "terminal": f"`chatrepl sessions show`, {LARGEST // MEGABYTE} MB message, in a terminal "
    "(its beginning, then a note)",
    "resume": "REPL `--resume` on it, until its last messages are shown (cut, with the note)",
    "history": "`/history` in that REPL, all of it through the pager, until the prompt is back",
}


def _figure(probe: Probe, cpu: list[float]) -> Figure:
    """One row; the 50 MB ones have the target, the smaller sizes show how time grows."""
    if probe.name.startswith("piped"):
        size = int(probe.name.split()[1])
        label = f"`chatrepl sessions show` into a pipe, {size // MEGABYTE} MB message (all of it)"
    else:
        size, label = LARGEST, LABELS[probe.name]
    if probe.error is not None or not probe.times:
        return Figure(SECTION, label, f"failed: {probe.error or 'no runs'}", f"< {TARGET:.0f} s",
                      False if size == LARGEST else None)  # fmt: skip
    value = median(probe.times)
    # A REPL's CPU would include its start and exit: only `sessions show` gets its CPU shown.
    whole_run = probe.name.startswith("piped") or probe.name == "terminal"
    shown = f"{seconds(value)} (CPU {seconds(median(cpu))})" if whole_run else seconds(value)
    if size != LARGEST:
        return Figure(SECTION, label, shown)
    return Figure(SECTION, label, shown, f"< {TARGET:.0f} s", value < TARGET)
