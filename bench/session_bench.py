"""Session figures: saving and loading a 5,000-message session, and the REPL's memory with it."""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import Figure, log, median, megabytes, seconds
from corpus import code_block, paragraph, sentence
from procs import Probe, ProbeError, expect_as_a_terminal, interleave, repl, rss
from tools import chatrepl

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message, Usage
from chatrepl.conversation.store import SessionStore

SECTION = "Sessions"
MESSAGES = 5_000
NAME = "bench-5000"
SETTLE = 1.0  # seconds after the prompt before RSS is read, for background work to finish
LAST_WORDS = "End of the bench session."  # the last reply's; shown above a resumed prompt


def conversation(count: int = MESSAGES, seed: int = 11) -> Conversation:
    """A long chat: short questions, answers of a few hundred characters, some with code."""
    rng = random.Random(seed)
    chat = Conversation(name=NAME, chat_model="gpt-4o-mini", system="You are a helpful assistant.")
    for index in range(count):
        if index % 2 == 0:
            chat.messages.append(Message("user", _question(rng)))
        else:
            chat.messages.append(_answer(rng))
    chat.messages[-1].content += f"\n\n{LAST_WORDS}"
    return chat


def _question(rng: random.Random) -> str:
    """What a person asks: a sentence or two, now and then with code pasted in."""
    text = " ".join(sentence(rng) for _ in range(rng.randint(1, 2)))
    return f"{text}\n\n{code_block(rng)}" if rng.random() < 0.1 else text


def _answer(rng: random.Random) -> Message:
    """An assistant reply as chatrepl saves one, with its model, finish reason and usage."""
    text = paragraph(rng)
    if rng.random() < 0.25:
        text += "\n\n" + code_block(rng)
    words = len(text.split())
    usage = Usage(900, words, 900 + words)
    return Message("assistant", text, model="gpt-4o-mini", finish_reason="stop", usage=usage)


def timed(runs: int, action: Callable[[], object]) -> float:
    """Median wall seconds of an action."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return median(times)


def measure(runs: int, rounds: int) -> list[Figure]:
    """Save and load times, then the REPL's memory with and without the session."""
    with tempfile.TemporaryDirectory(prefix="chatrepl-bench-") as temp:
        home = Path(temp)
        store = SessionStore(home / "sessions")
        chat = conversation()
        log(f"sessions: saving and loading {MESSAGES:,} messages, {runs} runs each …")
        save = timed(runs, lambda: store.save(chat))
        load = timed(runs, lambda: store.load(NAME))
        size = store.path(NAME).stat().st_size
        figures = [
            Figure(SECTION, f"`store.save()`, {MESSAGES:,} messages ({megabytes(size)})",
                   seconds(save), "< 150 ms", save < 0.150),
            Figure(SECTION, f"`store.load()`, {MESSAGES:,} messages", seconds(load),
                   "< 150 ms", load < 0.150),
        ]  # fmt: skip
        return figures + memory_figures(home, rounds)


def memory_figures(home: Path, rounds: int) -> list[Figure]:
    """RSS and time to prompt of the REPL resumed on the big session, beside an empty REPL."""
    from startup_bench import local_server

    with local_server() as server:
        tool = chatrepl(server.base_url, home)
        readings: dict[str, list[int]] = {"empty": [], "resumed": []}
        shown: list[float] = []  # seconds until a resumed session's last exchanges showed
        probes = [
            Probe("empty", _rss_probe(tool.repl, tool.env, tool.prompt, readings["empty"])),
            Probe("resumed", _rss_probe(
                [*tool.repl, "--resume", NAME], tool.env, tool.prompt, readings["resumed"], shown
            )),
        ]  # fmt: skip
        log(f"sessions: REPL memory, empty and resumed, {rounds} rounds …")
        interleave(probes, rounds, log)
    figures = [_memory_figure(probe, readings[probe.name]) for probe in probes]
    return figures + _resume_cost(*probes) + _transcript_figure(shown[1:] or shown)


# The 250 ms for a resumed session was set when a new session's prompt took 214 ms: at
# most 1.17x a new session's, which holds on a slower or busier machine too.
RESUME_VS_NEW = 250 / 214


def _resume_cost(empty: Probe, resumed: Probe) -> list[Figure]:
    """The resumed REPL's prompt against the new session's, measured in the same rounds."""
    if not (empty.times and resumed.times):
        return []
    new, old = median(empty.times), median(resumed.times)
    return [Figure(
        SECTION, f"REPL resumed on the {MESSAGES:,}-message session vs a new session's prompt",
        f"{old / new:.2f}× ({seconds(old)} vs {seconds(new)}; +{(old - new) * 1000:.0f} ms)",
        f"≤ {RESUME_VS_NEW:.2f}×", old / new <= RESUME_VS_NEW,
    )]  # fmt: skip


def _transcript_figure(shown: list[float]) -> list[Figure]:
    """When a resumed session's last exchanges were on screen (parsed after the prompt)."""
    if not shown:
        return []
    label = (
        f"REPL resumed on the {MESSAGES:,}-message session: its last exchanges shown (reference)"
    )
    return [Figure(SECTION, label, f"after {seconds(median(shown))}")]


def _rss_probe(
    argv: list[str],
    env: dict[str, str],
    prompt: str,
    readings: list[int],
    shown: list[float] | None = None,
) -> Callable[[], float]:
    """A probe timing the prompt and recording RSS once the REPL has settled; with `shown`,
    also the time until the session's last words are on screen."""

    def run() -> float:
        with repl(argv, env, prompt) as (child, elapsed):
            if shown is not None:
                prompted = time.perf_counter()
                expect_as_a_terminal(child, re.escape(LAST_WORDS))
                shown.append(elapsed + time.perf_counter() - prompted)
            time.sleep(SETTLE)
            if not child.isalive():
                raise ProbeError("the REPL exited right after its prompt")
            readings.append(rss(child.pid))
            return elapsed

    return run


def _memory_figure(probe: Probe, readings: list[int]) -> Figure:
    """One REPL's median RSS and time to prompt (reference: no target)."""
    label = (
        f"REPL resumed on the {MESSAGES:,}-message session (`--resume`)"
        if probe.name == "resumed"
        else "REPL with a new, empty session"
    )
    if probe.error is not None or not probe.times:
        return Figure(SECTION, label, f"failed: {probe.error or 'no runs'}")
    # The warm-up round's reading is left out, as its time is.
    kept = readings[1:] or readings
    prompt_after = median(probe.times)
    value = f"RSS {median(kept) / 2**20:.0f} MiB; prompt after {seconds(prompt_after)}"
    if probe.name == "resumed":
        return Figure(SECTION, label, value, "prompt ≤ 250 ms", prompt_after <= 0.250)
    return Figure(SECTION, label, value)
