"""Crash harness: chatrepl killed with SIGKILL at random points of streamed replies.

Each trial reopens one session in the REPL (`chatrepl --resume crash`, in a pseudo-terminal),
sends messages whose replies stream from the tests' fake server (about 60 chunks, 10 ms apart),
and kills the process with SIGKILL at a random moment from the first Enter until a little after
the first reply would end; turns whose prompt came back before the kill are "finished". After
every kill: the session file parses and matches sessions/session.schema.json, holds every turn
finished in any trial so far (its question, then its whole reply, not marked interrupted), and
no temp file is left; a temp file left by a kill that landed mid-write is counted, and must be
gone once the next chatrepl has opened the session. A trial whose REPL cannot reopen the session
(say, because the killed one's lock were still held) fails.

python bench/crash_harness.py [--trials 100] [--seed 1]   (also a section of bench/run.py)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the tests' fake server

import jsonschema
import pexpect
from common import REPO, Figure, log, script

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.store import SessionStore
from tests.fakeserver import FakeOpenAI
from tools import API_KEY, CHATREPL_PROMPT, clean_environment

SECTION = "Crash safety"
SESSION = "crash"
FILLER = " ".join(f"w{i}" for i in range(45))  # the echoed reply streams in ~60 chunks
CHUNK_DELAY = 0.01
ECHO = "Echo: "
EARLY_SHARE = 0.25  # kills that fall between the Enter and the reply's first words
EARLY_WINDOW = 1.0  # seconds after the Enter
DEFAULT_STREAM_SECONDS = 0.8  # until a finished turn has shown how long a reply streams
OPEN_TIMEOUT = 60.0
SCHEMA = json.loads((REPO / "sessions" / "session.schema.json").read_text())


@dataclass
class Tally:
    """What the trials showed."""

    trials: int = 0
    failures: list[str] = field(default_factory=list)
    finished_turns: int = 0
    kills: Counter[str] = field(default_factory=Counter)  # when in a turn each kill landed
    temp_files_left: int = 0  # by a kill that landed mid-write (then removed at the next open)
    stream_seconds: list[float] = field(default_factory=list)  # reply shown -> prompt back
    seconds: float = 0.0


def question(trial: int, turn: int) -> str:
    """A message unique to its trial and turn; the fake server's reply echoes it."""
    return f"trial {trial} turn {turn} {FILLER}"


def run(trials: int, seed: int = 1) -> Tally:
    """Run the trials against a fake server; return what they showed."""
    server = FakeOpenAI(chunk_size=4).start()
    server.delay = CHUNK_DELAY
    rng = random.Random(seed)
    tally = Tally()
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="chatrepl-crash-") as home:
            env = clean_environment(
                CHATREPL_HOME=home,
                OPENAI_BASE_URL=server.base_url,
                OPENAI_API_KEY=API_KEY,
                CHATREPL_MAX_RETRIES="0",
            )
            sessions = Path(home) / "sessions"
            SessionStore(sessions).save(Conversation(name=SESSION, chat_model="gpt-4o-mini"))
            finished: list[str] = []
            for number in range(trials):
                problems = trial(number, rng, env, sessions, finished, tally)
                tally.failures += [f"trial {number}: {problem}" for problem in problems]
                tally.trials += 1
                if number % 10 == 9:
                    log(f"  {number + 1}/{trials} trials, {len(tally.failures)} failures")
            tally.failures += [f"after the last trial: {p}" for p in reopen(env, sessions)]
    finally:
        server.stop()
    tally.seconds = time.perf_counter() - started
    return tally


def trial(
    number: int,
    rng: random.Random,
    env: dict[str, str],
    sessions: Path,
    finished: list[str],
    tally: Tally,
) -> list[str]:
    """Open the session, finish 0-2 turns, kill the next one at a random moment, check."""
    child = spawn(env)
    try:
        child.expect(CHATREPL_PROMPT, timeout=OPEN_TIMEOUT)
        problems = ["a temp file was still there once it was open"] if temp_files(sessions) else []
        for turn in range(rng.randint(0, 2)):
            text = question(number, turn)
            child.send(text + "\r")
            started = reply_began(child, text, time.monotonic() + OPEN_TIMEOUT)
            child.expect(CHATREPL_PROMPT, timeout=OPEN_TIMEOUT)
            tally.stream_seconds.append(time.monotonic() - started)
            finished.append(text)
            tally.finished_turns += 1
        tally.kills[killed_turn(child, question(number, 9), rng, tally, finished)] += 1
    except (pexpect.TIMEOUT, pexpect.EOF):
        problems = [f"the REPL stopped answering: {(child.before or '')[-200:]!r}"]
    kill(child)
    tally.temp_files_left += len(temp_files(sessions))
    return problems + check_file(sessions / f"{SESSION}.json", finished)


def killed_turn(
    child: Any, text: str, rng: random.Random, tally: Tally, finished: list[str]
) -> str:
    """Send `text`; the kill falls at a random moment: now and then before the reply shows,
    mostly while it streams (or just after). Returns where it fell."""
    child.send(text + "\r")
    sent = time.monotonic()
    try:
        if rng.random() < EARLY_SHARE:
            deadline = sent + rng.uniform(0, EARLY_WINDOW)
            reply_began(child, text, deadline)
        else:
            stream = statistics.median(tally.stream_seconds or [DEFAULT_STREAM_SECONDS])
            began = reply_began(child, text, sent + OPEN_TIMEOUT)
            deadline = began + rng.uniform(0, 1.5 * stream)
    except pexpect.TIMEOUT:
        return "before the reply showed"
    try:
        child.expect(CHATREPL_PROMPT, timeout=max(0.0, deadline - time.monotonic()))
    except pexpect.TIMEOUT:
        return "mid-reply"
    finished.append(text)  # the prompt came back before the kill: a finished turn
    tally.finished_turns += 1
    time.sleep(max(0.0, deadline - time.monotonic()))
    return "after the reply"


def reply_began(child: Any, text: str, deadline: float) -> float:
    """Wait until the reply to `text` shows; return when it did."""
    child.expect(re.escape(echo(text)), timeout=max(0.0, deadline - time.monotonic()))
    return time.monotonic()


def echo(text: str) -> str:
    """The first words of the fake server's reply to `text`."""
    return ECHO + text.split(" w0")[0]


def check_file(path: Path, finished: list[str]) -> list[str]:
    """The session file is valid and holds every finished turn, whole and in order."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(document, SCHEMA)
    except (OSError, ValueError, jsonschema.ValidationError) as error:
        return [f"session file invalid: {str(error)[:200]}"]
    messages = document["messages"]
    replies = {
        message["content"]: messages[index + 1]
        for index, message in enumerate(messages[:-1])
        if message["role"] == "user" and messages[index + 1]["role"] == "assistant"
    }
    problems = []
    for text in finished:
        reply = replies.get(text)
        if reply is None:
            problems.append(f"finished turn {text[:20]!r} is not in the file")
        elif reply["content"] != ECHO + text or reply.get("interrupted"):
            problems.append(f"the reply to {text[:20]!r} is not whole")
    questions = [m["content"] for m in messages if m["role"] == "user"]
    if [q for q in questions if q in set(finished)] != finished:
        problems.append("finished turns are out of order or repeated")
    return problems


def reopen(env: dict[str, str], sessions: Path) -> list[str]:
    """Open the session once more: it opens, and any temp file a kill left is gone."""
    child = spawn(env)
    try:
        child.expect(CHATREPL_PROMPT, timeout=OPEN_TIMEOUT)
        left = temp_files(sessions)
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=OPEN_TIMEOUT)
    except (pexpect.TIMEOUT, pexpect.EOF):
        return ["the session did not reopen"]
    finally:
        kill(child)
    return [f"temp files remain: {left}"] if left else []


def spawn(env: dict[str, str]) -> Any:
    """The installed chatrepl, resuming the session, in a pseudo-terminal."""
    return pexpect.spawn(
        script("chatrepl"),
        ["--resume", SESSION],
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        codec_errors="replace",
    )


def kill(child: Any) -> None:
    """SIGKILL, and reap it (on a busy machine that can take a while)."""
    if child.isalive():
        child.kill(signal.SIGKILL)
    deadline = time.monotonic() + OPEN_TIMEOUT
    while child.isalive() and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(pexpect.ExceptionPexpect):
        child.close(force=True)


def temp_files(sessions: Path) -> list[str]:
    """Temp files of session writes in the directory."""
    return sorted(p.name for p in sessions.glob(f".{SESSION}.json.*.tmp"))


def summary(tally: Tally) -> str:
    """The figure, in words."""
    kills = ", ".join(f"{count} {phase}" for phase, count in sorted(tally.kills.items()))
    return (
        f"{len(tally.failures)} failures in {tally.trials} trials ({tally.seconds:.0f} s); "
        f"{tally.finished_turns} finished turns checked after each kill; kills: {kills}; "
        f"temp files left by a kill: {tally.temp_files_left}, all removed at the next open"
    )


def measure(trials: int = 100, seed: int = 1) -> list[Figure]:
    """The crash-safety figure for bench/run.py."""
    log(f"crash harness: {trials} trials")
    tally = run(trials, seed)
    for failure in tally.failures[:10]:
        log(f"  FAIL {failure}")
    name = (
        f"SIGKILL at a random point of a streamed reply, {trials} trials: session file valid, "
        "every finished turn in it, no temp file"
    )
    return [Figure(SECTION, name, summary(tally), "0 failures", not tally.failures)]


def main(argv: list[str] | None = None) -> int:
    """Run the harness alone and print what it found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    tally = run(args.trials, args.seed)
    print(summary(tally))
    for failure in tally.failures:
        print(f"FAIL {failure}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
