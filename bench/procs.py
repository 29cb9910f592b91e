"""Timing programs: wall time of a command, time until a REPL prompt shows in a pty, and RSS."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect

PTY_ROWS, PTY_COLUMNS = 40, 100
TIMEOUT = 60.0


class ProbeError(Exception):
    """A program did not do what the benchmark needs (no answer, no prompt, an error)."""


@dataclass
class Probe:
    """A named measurement, run once per round; each run returns seconds."""

    name: str
    run: Callable[[], float]
    times: list[float] = field(default_factory=list)
    error: str | None = None


def wall_time(argv: list[str], env: dict[str, str], expect: str | None = None) -> float:
    """Seconds that a command takes; its output must contain `expect` when given."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise ProbeError(f"exit code {done.returncode}: {_last_line(done.stderr or done.stdout)}")
    if expect is not None and expect not in done.stdout:
        raise ProbeError(f"no {expect!r} in its output: {done.stdout[-200:]!r}")
    return elapsed


def _last_line(text: str) -> str:
    """The last non-empty line of some output, for an error message."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


@contextlib.contextmanager
def repl(argv: list[str], env: dict[str, str], prompt: str) -> Iterator[tuple[Any, float]]:
    """Start a REPL in a pseudo-terminal; yield it and the seconds until its prompt showed."""
    started = time.perf_counter()
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        env=env,
        dimensions=(PTY_ROWS, PTY_COLUMNS),
        encoding="utf-8",
        codec_errors="replace",
        timeout=TIMEOUT,
    )
    try:
        try:
            expect_as_a_terminal(child, prompt)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            seen = (child.before or "")[-300:]
            raise ProbeError(f"no prompt ({type(error).__name__}); it printed {seen!r}") from None
        yield child, time.perf_counter() - started
    finally:
        _leave(child)


def _leave(child: Any) -> None:
    """Quit a REPL with Ctrl-D, or end it if it does not go."""
    try:
        if child.isalive():
            child.sendcontrol("d")
            child.expect(pexpect.EOF, timeout=5)
    except (pexpect.TIMEOUT, OSError):
        pass
    child.close(force=True)


CURSOR_POSITION_REQUEST = re.escape("\x1b[6n")


def expect_as_a_terminal(child: Any, pattern: str) -> None:
    """Wait for `pattern` (a regex), answering cursor position requests as a terminal would:
    prompt_toolkit asks with its first prompt, and before it prints above its prompt it waits
    for the answer (a second or two when none comes)."""
    while child.expect([pattern, CURSOR_POSITION_REQUEST]) == 1:
        child.send("\x1b[1;1R")


def time_to_prompt(argv: list[str], env: dict[str, str], prompt: str) -> float:
    """Seconds from starting a REPL until its prompt is on screen."""
    with repl(argv, env, prompt) as (_, elapsed):
        return elapsed


def rss(pid: int) -> int:
    """Resident set size of a process in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProbeError(f"no VmRSS for process {pid}")


def interleave(probes: list[Probe], rounds: int, progress: Callable[[str], None]) -> None:
    """Run every probe once per round, rotating the order; a first round warms caches up."""
    for round_number in range(rounds + 1):
        progress(f"  round {round_number}/{rounds}" + (" (warm-up)" if not round_number else ""))
        shift = round_number % len(probes)
        for probe in probes[shift:] + probes[:shift]:
            if probe.error is not None:
                continue
            try:
                elapsed = probe.run()
            except (
                ProbeError,
                pexpect.ExceptionPexpect,
                subprocess.SubprocessError,
                OSError,
            ) as error:
                probe.error = str(error)
                continue
            if round_number:
                probe.times.append(elapsed)
