"""Rendering figures: the streaming Markdown renderer against a one-shot render and a naive Live."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common import Figure, log, megabytes, percentile, ratio, seconds
from corpus import CHARS_PER_TOKEN, chunks, reply
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from chatrepl.ui.stream_render import make_renderer

SECTION = "Rendering"
CODE_THEME = "monokai"
TOKENS_PER_SECOND = 100
WIDTH, HEIGHT = 100, 40


@dataclass(frozen=True)
class Options:
    """How much of the rendering suite to run."""

    paced_tokens: int  # tokens streamed in real time at 100 tokens/s
    repeats: int  # runs of each as-fast-as-possible case
    naive_tokens: tuple[int, ...]  # reply sizes for the naive Live reference


@dataclass(frozen=True)
class Run:
    """One rendering of a reply: CPU seconds, wall seconds, bytes written, feed() latencies."""

    cpu: float
    wall: float
    written: int
    latencies: tuple[float, ...] = ()
    refresh_cpu: float = 0.0  # CPU of the threads the renderer started (rich's Live refresh)


class CountingSink(io.TextIOBase):
    """A terminal stand-in that only counts the UTF-8 bytes written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def writable(self) -> bool:
        """Always."""
        return True

    def write(self, text: str) -> int:
        """Count text as the bytes a terminal would receive."""
        self.written += len(text.encode("utf-8", "replace"))
        return len(text)


def terminal(sink: CountingSink) -> Console:
    """A 100x40 truecolor terminal console that writes to sink."""
    return Console(
        file=sink,
        force_terminal=True,
        width=WIDTH,
        height=HEIGHT,
        color_system="truecolor",
    )


def stream(pieces: list[str], pace: float | None = None) -> Run:
    """Feed pieces to chatrepl's renderer, every `pace` seconds or as fast as possible.

    CPU is the whole process's (the Live refresh thread included) less what this loop spends
    outside feed() waiting for its next chunk.
    """
    sink = CountingSink()
    latencies = []
    in_feed = 0.0
    before = set(threading.enumerate())
    cpu, wall, mine = time.process_time(), time.perf_counter(), time.thread_time()
    with make_renderer(terminal(sink), markdown=True, code_theme=CODE_THEME) as renderer:
        for index, piece in enumerate(pieces):
            if pace is not None:
                _sleep_until(wall + index * pace)
            started, started_cpu = time.perf_counter(), time.thread_time()
            renderer.feed(piece)
            in_feed += time.thread_time() - started_cpu
            latencies.append(time.perf_counter() - started)
        loop = time.thread_time() - mine - in_feed
        refresh = sum(thread_cpu(t) for t in set(threading.enumerate()) - before)
    used = time.process_time() - cpu - loop
    return Run(used, time.perf_counter() - wall, sink.written, tuple(latencies), refresh)


def thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds a running thread has used so far (0 where the platform cannot tell)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident or 0))
    except (AttributeError, OSError):
        return 0.0


def _sleep_until(deadline: float) -> None:
    """Sleep until the perf_counter deadline, so that the pace does not drift."""
    delay = deadline - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def one_shot(text: str) -> Run:
    """Render the finished reply once, as `console.print(Markdown(text))`: the floor."""
    sink = CountingSink()
    console = terminal(sink)
    cpu, wall = time.process_time(), time.perf_counter()
    console.print(Markdown(text, code_theme=CODE_THEME))
    return Run(time.process_time() - cpu, time.perf_counter() - wall, sink.written)


def naive_live(pieces: list[str]) -> Run:
    """The naive way (shell_gpt's): one Live, the whole reply re-rendered after every chunk."""
    sink = CountingSink()
    console = terminal(sink)
    text = ""
    cpu, wall = time.process_time(), time.perf_counter()
    with Live(console=console, auto_refresh=False, vertical_overflow="visible") as live:
        for piece in pieces:
            text += piece
            live.update(Markdown(text, code_theme=CODE_THEME), refresh=True)
    return Run(time.process_time() - cpu, time.perf_counter() - wall, sink.written)


def best_of(runs: int, action: Callable[[], Run]) -> Run:
    """The run of median CPU time among `runs` runs."""
    results = sorted((action() for _ in range(runs)), key=lambda run: run.cpu)
    return results[len(results) // 2]


def tokens(text: str) -> str:
    """The size of a reply in tokens (4 characters each), for labels."""
    return f"{len(text) / CHARS_PER_TOKEN / 1000:.1f}k tokens"


def measure(options: Options) -> list[Figure]:
    """All rendering figures."""
    _use_a_capable_terminal()
    figures = [warm_up()]
    figures += paced_figures(options.paced_tokens)
    figures += fast_figures(reply(10_000), reply(20_000), options.repeats)
    figures += naive_figures(options.naive_tokens)
    return figures


def warm_up() -> Figure:
    """Load what a process loads on its first render, and report one such one-off cost.

    The first time rich highlights a code fence in a language Pygments does not know (as a
    half-streamed ```` ```yam ```` is, in the live tail) Pygments scans every installed package
    for lexer plug-ins.
    """
    one_shot(reply(2_000))
    first = one_shot("```yam\nkey: value\n```\n")
    stream(chunks(reply(2_000)))
    return Figure(
        SECTION,
        "one-off per process: first fence in a language Pygments does not know (reference)",
        seconds(first.wall),
    )


def _use_a_capable_terminal() -> None:
    """rich draws no Live on TERM=dumb; the figures are about a real terminal."""
    if os.environ.get("TERM", "") in ("", "dumb", "unknown"):
        os.environ["TERM"] = "xterm-256color"


def paced_figures(count: int) -> list[Figure]:
    """Targets (a) and (d): CPU share and feed() latency while streaming at 100 tokens/s."""
    text = reply(10_000)[: count * CHARS_PER_TOKEN]
    pace = 1 / TOKENS_PER_SECOND
    log(f"rendering: streaming {tokens(text)} at {TOKENS_PER_SECOND} tokens/s …")
    run = stream(chunks(text), pace)
    share = run.cpu / run.wall
    p99 = percentile(list(run.latencies), 0.99)
    label = f"{tokens(text)} at {TOKENS_PER_SECOND} tokens/s"
    return [
        Figure(
            SECTION,
            f"(a) renderer CPU while streaming {label}",
            f"{share:.2%} ({run.cpu:.2f} s CPU in {run.wall:.1f} s, of which"
            f" {run.refresh_cpu:.2f} s in the Live refresh thread)",
            "≤ 2% of the stream's duration",
            share <= 0.02,
        ),
        Figure(
            SECTION,
            f"(d) feed() latency p99 while streaming {label}",
            f"{p99 * 1000:.2f} ms (max {max(run.latencies) * 1000:.1f} ms)",
            "< 10 ms",
            p99 < 0.010,
        ),
    ]


def fast_figures(small: str, large: str, repeats: int) -> list[Figure]:
    """Targets (b), (c) and a reference (d): replies fed as fast as possible."""
    log(f"rendering: one-shot and as-fast-as-possible renders, {repeats} runs each …")
    floor = {text: best_of(max(repeats, 3), lambda t=text: one_shot(t)) for text in (small, large)}
    fast = {text: best_of(repeats, lambda t=text: stream(chunks(t))) for text in (small, large)}
    figures = [
        Figure(
            SECTION,
            f"one-shot `console.print(Markdown(doc))`, {tokens(text)} (the floor)",
            f"{seconds(floor[text].cpu)} CPU, {megabytes(floor[text].written)}",
        )
        for text in (small, large)
    ]
    for text in (small, large):
        times = fast[text].cpu / floor[text].cpu
        figures.append(
            Figure(
                SECTION,
                f"(b) CPU fed as fast as possible, {tokens(text)}",
                f"{seconds(fast[text].cpu)} = {ratio(times)} the one-shot render"
                f" ({megabytes(fast[text].written)} written)",
                "≤ 5× the one-shot render",
                times <= 5,
            )
        )
    figures += growth_figures(fast[small], fast[large], tokens(small), tokens(large))
    p99 = percentile(list(fast[large].latencies), 0.99)
    figures.append(
        Figure(
            SECTION,
            f"feed() latency p99 fed as fast as possible, {tokens(large)} (reference)",
            f"{p99 * 1000:.2f} ms (max {max(fast[large].latencies) * 1000:.1f} ms)",
        )
    )
    return figures


def growth_figures(small: Run, large: Run, small_label: str, large_label: str) -> list[Figure]:
    """Target (c): the larger reply costs at most 2.3 times the smaller one."""
    cpu, written = large.cpu / small.cpu, large.written / small.written
    return [
        Figure(
            SECTION,
            f"(c) CPU growth, {large_label} vs {small_label}",
            f"{ratio(cpu)} ({seconds(large.cpu)} vs {seconds(small.cpu)})",
            "≤ 2.3×",
            cpu <= 2.3,
        ),
        Figure(
            SECTION,
            f"(c) bytes written growth, {large_label} vs {small_label}",
            f"{ratio(written)} ({megabytes(large.written)} vs {megabytes(small.written)})",
            "≤ 2.3×",
            written <= 2.3,
        ),
    ]


def naive_figures(sizes: tuple[int, ...]) -> list[Figure]:
    """Reference: the naive per-chunk Live beside chatrepl's renderer on small replies."""
    figures = []
    for size in sizes:
        text = reply(10_000)[: size * CHARS_PER_TOKEN]
        log(f"rendering: naive Live on {tokens(text)} …")
        naive = naive_live(chunks(text))
        ours = best_of(3, lambda t=text: stream(chunks(t)))
        figures.append(
            Figure(
                SECTION,
                f"naive `Live(Markdown(all_text))` per chunk, {tokens(text)} (reference)",
                f"{seconds(naive.cpu)} CPU, {megabytes(naive.written)} = "
                f"{ratio(naive.cpu / ours.cpu)} chatrepl's CPU ({seconds(ours.cpu)}), "
                f"{ratio(naive.written / ours.written)} its bytes",
            )
        )
    return figures
