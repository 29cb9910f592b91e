"""Token counting: a 5,000-message session counted the first time and at each later turn, a
100 KB paste, and what loading an encoding costs (once per process).

Also runnable alone: python bench/tokens_bench.py
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable

from common import REPO, Figure, log, median, seconds
from corpus import paragraph, sentence
from session_bench import conversation

from chatrepl.context.encodings import CL100K, O200K, load_encoding
from chatrepl.context.tokens import EncodingCounter, EstimatingCounter
from chatrepl.conversation.messages import Message

SECTION = "Token counting"
MODELS = {O200K: "gpt-4o-mini", CL100K: "gpt-4"}
PASTE_BYTES = 100_000
LOAD_PROBE = """
import json, resource, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
before, started, cpu = rss(), time.perf_counter(), time.process_time()
import tiktoken
imported = time.perf_counter()
from chatrepl.context.encodings import load_encoding
load_encoding(sys.argv[1])
print(json.dumps({"import": imported - started, "total": time.perf_counter() - started,
                  "cpu": time.process_time() - cpu, "rss": rss() - before}))
"""


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    started, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - started, time.process_time() - cpu


def measure(rounds: int = 9) -> list[Figure]:
    """Every figure of the section."""
    chat = conversation()
    figures: list[Figure] = []
    for encoding, model in MODELS.items():
        load_encoding(encoding)  # loading is measured on its own, in a fresh process
        figures += session_figures(encoding, model, chat.system, chat.messages, rounds)
        figures.append(paste_figure(encoding, model, rounds))
    figures.append(estimate_figure(chat.system, chat.messages, rounds))
    figures += [load_figure(encoding, max(3, rounds // 3)) for encoding in MODELS]
    figures.append(Figure(SECTION, "the machine's load average (1 min) after these (reference)",
                          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"))  # fmt: skip
    return figures


def session_figures(
    encoding: str, model: str, system: str | None, messages: list[Message], rounds: int
) -> list[Figure]:
    """The first count of the session (empty cache), then later turns (two new messages)."""
    size = sum(len(m.content) for m in messages)
    log(f"tokens: {model}, {len(messages):,} messages ({size / 1e6:.2f} MB), {rounds} rounds …")
    firsts, cpus, turns, turn_cpus = [], [], [], []
    for round_number in range(rounds):
        counter = EncodingCounter(model, encoding, encoder=load_encoding(encoding))
        history = list(messages)
        wall, cpu = timed(lambda: counter.count_messages(system, history))  # noqa: B023
        firsts.append(wall)
        cpus.append(cpu)
        rng = random.Random(round_number)
        for _ in range(5):
            history += [Message("user", sentence(rng)), Message("assistant", paragraph(rng))]
            wall, cpu = timed(lambda: counter.count_messages(system, history))  # noqa: B023
            turns.append(wall)
            turn_cpus.append(cpu)
    total = counter.count_messages(system, messages).tokens
    first, later = median(firsts), median(turns)
    return [
        Figure(SECTION, f"first count of a {len(messages):,}-message session, {model} "
               f"({encoding}; {total:,} tokens)",
               f"{seconds(first)} (CPU {seconds(median(cpus))})", "< 150 ms", first < 0.150),
        floor_figure(encoding, messages, rounds),
        Figure(SECTION, f"each later turn of that session, {model} (2 new messages)",
               f"{later * 1000:.2f} ms (CPU {median(turn_cpus) * 1000:.2f} ms)", "< 5 ms",
               later < 0.005),
    ]  # fmt: skip


def floor_figure(encoding: str, messages: list[Message], rounds: int) -> Figure:
    """tiktoken alone on the same texts: what a first count cannot go below."""
    encode = load_encoding(encoding).encode_ordinary
    texts = [m.content for m in messages]
    runs = [timed(lambda: [encode(text) for text in texts]) for _ in range(rounds)]
    wall, cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
    return Figure(SECTION, f"the floor: tiktoken's `encode_ordinary` alone on those {len(texts):,} "
                  f"texts (reference)", f"{seconds(wall)} (CPU {seconds(cpu)})")  # fmt: skip


def paste_text(size: int = PASTE_BYTES, seed: int = 5) -> str:
    """About `size` bytes of what people paste: prose, lists and code."""
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(paragraph(rng))
    return "\n\n".join(parts)[:size]


def paste_figure(encoding: str, model: str, rounds: int) -> Figure:
    """count_text of a 100 KB paste."""
    counter = EncodingCounter(model, encoding, encoder=load_encoding(encoding))
    text = paste_text()
    runs = [timed(lambda: counter.count_text(text)) for _ in range(rounds)]
    paste, cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
    tokens = counter.count_text(text).tokens
    return Figure(SECTION, f"a 100 KB paste, {model} ({tokens:,} tokens)",
                  f"{paste * 1000:.1f} ms (CPU {cpu * 1000:.1f} ms)", "< 20 ms",
                  paste < 0.020)  # fmt: skip


def estimate_figure(system: str | None, messages: list[Message], rounds: int) -> Figure:
    """The estimating counter (any other model) on the same session, first count."""
    walls = []
    for _ in range(rounds):
        counter = EstimatingCounter("llama3")
        walls.append(timed(lambda: counter.count_messages(system, messages))[0])  # noqa: B023
    return Figure(SECTION, "first count of the same session, an estimated model (reference)",
                  seconds(median(walls)))  # fmt: skip


def load_figure(encoding: str, runs: int) -> Figure:
    """Importing tiktoken and loading the encoding in a fresh process (reference)."""
    log(f"tokens: loading {encoding} in {runs} fresh processes …")
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", LOAD_PROBE, encoding], cwd=REPO, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            return Figure(SECTION, f"loading {encoding}", f"failed: {done.stderr[-200:]}")
        results.append(json.loads(done.stdout))
    value = (
        f"{seconds(median([r['total'] for r in results]))} "
        f"(import tiktoken {seconds(median([r['import'] for r in results]))}; "
        f"CPU {seconds(median([r['cpu'] for r in results]))}), "
        f"RSS +{median([r['rss'] for r in results]) / 2**20:.0f} MiB"
    )
    name = f"first use of {encoding} in a process: import tiktoken, read, build (reference)"
    return Figure(SECTION, name, value)


if __name__ == "__main__":
    for figure in measure():
        print(f"{figure.name}: {figure.value} [{figure.target} {figure.verdict}]")
