"""Session search: building the index of 1,000 sessions of 50 messages, searching it, and what
keeping it up to date costs each turn.

Also runnable alone: python bench/search_bench.py
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import Figure, log, median, percentile, seconds
from corpus import code_block, paragraph, sentence

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message, Usage
from chatrepl.conversation.search_index import SearchIndex
from chatrepl.conversation.store import SessionStore

SECTION = "Session search"
SESSIONS = 1_000
MESSAGES = 50
TURNS = 20  # later turns timed per round
# Words each found in a few sessions (one topic word per session, 200 topics), next to the
# corpus's own words, which occur in nearly every message.
KINDS = ("kafka", "redis", "oauth", "gpu", "csv")
TOPICS = tuple(f"{word}{n}" for n in range(40) for word in KINDS)
QUERIES = {
    "a rare word": "kafka7",
    "two words, one rare": "redis3 timeout",
    "a word beginning (word*)": "oauth1*",
    "a common word": "stream",
}
TARGET_SEARCH, TARGET_TURN, TARGET_BUILD = 0.050, 0.005, 3.0


def sessions(count: int = SESSIONS) -> list[Conversation]:
    """`count` chats of MESSAGES messages (questions, replies of a few hundred characters, some
    code), each with a topic word in three of its messages."""
    return [chat_about(TOPICS[index % len(TOPICS)], index) for index in range(count)]


def chat_about(topic: str, seed: int) -> Conversation:
    """One chat of MESSAGES messages."""
    rng = random.Random(seed)
    chat = Conversation(name=f"chat-{seed:04d}", chat_model="gpt-4o-mini")
    for index in range(MESSAGES):
        if index % 2 == 0:
            chat.messages.append(Message("user", " ".join(sentence(rng) for _ in range(2))))
            continue
        text = paragraph(rng) + ("\n\n" + code_block(rng) if rng.random() < 0.25 else "")
        usage = Usage(900, len(text.split()), 900 + len(text.split()))
        chat.messages.append(Message("assistant", text, model="gpt-4o-mini", usage=usage))
    for message in rng.sample(chat.messages, 3):
        message.content += f"\n\nThis is about {topic}."
    return chat


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    started, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - started, time.process_time() - cpu


def millis(value: float) -> str:
    """Milliseconds, two decimals below 10."""
    return f"{value * 1000:.2f} ms" if value < 0.01 else seconds(value)


def measure(rounds: int = 5) -> list[Figure]:
    """Every figure of the section."""
    with tempfile.TemporaryDirectory(prefix="chatrepl-search-") as temp:
        home = Path(temp)
        log(f"search: writing {SESSIONS:,} sessions of {MESSAGES} messages …")
        plain = SessionStore(home / "sessions")  # no index: the files only
        for chat in sessions():
            plain.save(chat)
        figures = [build_figure(home, rounds)]
        store = SessionStore(home / "sessions", index=SearchIndex(home / "search.sqlite3"))
        store.search("warm")  # the index is up to date; the connection open
        figures += [search_figure(store, label, query, rounds) for label, query in QUERIES.items()]
        figures += turn_figures(home, rounds)
        size = (home / "search.sqlite3").stat().st_size
        figures.append(Figure(SECTION, "index size (reference)", f"{size / 1e6:.1f} MB"))
    figures.append(Figure(SECTION, "the machine's load average (1 min) after these (reference)",
                          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"))  # fmt: skip
    return figures


def build_figure(home: Path, rounds: int) -> Figure:
    """The index built from nothing by the first search (every file read and indexed)."""
    log(f"search: building the index from scratch, {max(1, rounds // 2)} rounds …")
    walls, cpus = [], []
    for _ in range(max(1, rounds // 2)):
        for leftover in home.glob("search.sqlite3*"):
            leftover.unlink()
        store = SessionStore(home / "sessions", index=SearchIndex(home / "search.sqlite3"))
        wall, cpu = timed(lambda: store.search("kafka7"))  # noqa: B023
        walls.append(wall)
        cpus.append(cpu)
        store.close()
    build = median(walls)
    shown = f"{seconds(build)} (CPU {seconds(median(cpus))})"
    name = f"index built from scratch, {SESSIONS:,} sessions × {MESSAGES} messages (first search)"
    return Figure(SECTION, name, shown, "< 3 s", build < TARGET_BUILD)


def search_figure(store: SessionStore, label: str, query: str, rounds: int) -> Figure:
    """One query, the index up to date (each search still checks every file's stamp)."""
    walls, cpus = [], []
    for _ in range(rounds * 4):
        wall, cpu = timed(lambda: store.search(query))
        walls.append(wall)
        cpus.append(cpu)
    hits = store.search(query, limit=SESSIONS)
    found = f"{sum(hit.matches for hit in hits):,} messages in {len(hits):,} sessions match"
    value = median(walls)
    shown = f"{millis(value)} (CPU {millis(median(cpus))}; p90 {millis(percentile(walls, 0.9))})"
    return Figure(SECTION, f"search, {label}: `{query}` ({found})", shown, "< 50 ms",
                  value < TARGET_SEARCH)  # fmt: skip


def turn_figures(home: Path, rounds: int) -> list[Figure]:
    """Later turns of a 50-message session: the index update alone, and the whole save."""
    log(f"search: {TURNS} turns × {rounds} rounds of index updates …")
    index = SearchIndex(home / "search.sqlite3")
    plain = SessionStore(home / "sessions")  # writes the file without touching the index
    store = SessionStore(home / "sessions", index=index)
    chat, file = plain.load("chat-0001"), plain.path("chat-0001")
    store.load("chat-0001")
    updates, cpus, saves, plain_saves = [], [], [], []
    rng = random.Random(5)
    for _ in range(rounds):
        for turn in range(TURNS):
            chat.add(Message("user", f"and what about case {turn} {rng.random()}?"))
            chat.add(Message("assistant", f"Case {turn}: " + " ".join(rng.sample(TOPICS, 8))))
            plain.save(chat)
            wall, cpu = timed(lambda: index.saved("chat-0001", chat, file))
            updates.append(wall)
            cpus.append(cpu)
            chat.add(Message("user", f"and one more {turn}"))
            plain_saves.append(timed(lambda: plain.save(chat))[0])
            chat.add(Message("user", f"one more {turn}"))
            saves.append(timed(lambda: store.save(chat))[0])
        del chat.messages[MESSAGES:]  # back to a 50-message session
    update = median(updates)
    return [
        Figure(SECTION, f"index update per turn, {MESSAGES}-message session (a question and "
               "a reply added)", f"{millis(update)} (CPU {millis(median(cpus))}; "
               f"p90 {millis(percentile(updates, 0.9))})", "< 5 ms", update < TARGET_TURN),
        Figure(SECTION, "`store.save()` of a turn, index update included (reference)",
               f"{millis(median(saves))} (p90 {millis(percentile(saves, 0.9))}); without an "
               f"index {millis(median(plain_saves))} (p90 {millis(percentile(plain_saves, 0.9))})"),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    for figure in measure():
        print(f"{figure.name}: {figure.value} [{figure.verdict}]")
