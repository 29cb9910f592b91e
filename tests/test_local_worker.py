"""The embedded model in its worker process: a native crash there is one line, never the end of
chatrepl; Ctrl-C stops a reply, not the worker; the worker never outlives chatrepl."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from chatrepl.backends.base import (
    ChatRequest,
    CompletionRequest,
    Delta,
    Finish,
    Reply,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from chatrepl.backends.local_backend import (
    LocalBackend,
    default_model_path,
    local_backend_available,
)
from chatrepl.backends.local_worker import LocalWorkerBackend, exit_cause
from chatrepl.backends.registry import build_backend
from chatrepl.config import Settings
from chatrepl.context.tokens import Count, counter_for
from chatrepl.conversation.messages import Attachment, GenerationParams, Message
from chatrepl.errors import BackendError
from tests.conftest import isolate
from tests.harness import lines, run_repl
from tests.test_e2e import PROMPT, type_line

pytestmark = pytest.mark.skipif(not local_backend_available(), reason="embedded model missing")

CRASH_LINE = "the embedded model crashed (signal {}); your session is saved"
# The live tail redraws its lines after an erase (ESC [2K); the spinner's line has colour first.
REPLY_TEXT = r"\x1b\[2K(?!\x1b)[^\r\n]*?[A-Za-z]{2,}"
STORY = (Message("user", "Tell me a long story about a dragon."),)


def chat(max_tokens: int) -> ChatRequest:
    """A chat request for `max_tokens` tokens at most."""
    return ChatRequest("smollm2", STORY, params=GenerationParams(max_tokens=max_tokens))


def text_of(deltas: list) -> str:
    """The text in a list of deltas."""
    return "".join(delta.text for delta in deltas if isinstance(delta, TextDelta))


def process_gone(pid: int, within: float = 10.0) -> bool:
    """Whether the process ends (or is a reaped-to-be zombie) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def children(pid: int) -> list[int]:
    """The ids of the processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def spawned_worker(pid: int) -> int:
    """The embedded model's worker among `pid`'s children."""
    for child in children(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"chatrepl.backends.local_worker" in command:
            return child
    raise AssertionError(f"no worker process under {pid}")


def spawn_interruptible(env: dict[str, str]) -> pexpect.spawn:
    """The installed program in a pseudo-terminal, with Ctrl-C working even when this test run
    ignores SIGINT (a background job of a non-interactive shell does; the program would inherit
    that)."""
    program = shutil.which("chatrepl")
    command, argv = (program, []) if program else (sys.executable, ["-m", "chatrepl"])
    return pexpect.spawn(
        command,
        argv,
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 120),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.fixture(scope="module")
def worker_backend() -> LocalWorkerBackend:
    """The default model in a worker, loaded once for the module."""
    path = default_model_path()
    assert path is not None
    backend = LocalWorkerBackend(path)
    backend.prepare()
    yield backend
    backend.close()


def test_what_crosses_the_pipe_pickles() -> None:
    message = Message(
        "user", "hi", attachments=[Attachment("a.txt", "text")], params=GenerationParams(seed=1)
    )
    sent = [
        ChatRequest("m", (message,), system="s", tools=(ToolSpec("t", "d"),)),
        CompletionRequest("m", "once", params=GenerationParams(max_tokens=3, stop=("\n",))),
        TextDelta("x"),
        ToolCallDelta(0, "call_1", "t", "{}"),
        Finish("stop"),
        Usage(1, 2, 3),
        Reply("text", "stop", Usage(1, 2, 3), {"choices": [{"text": "text"}]}),
    ]
    assert [pickle.loads(pickle.dumps(item)) for item in sent] == sent


def test_the_registry_isolates_the_embedded_model_and_starts_its_worker_at_once() -> None:
    path = str(default_model_path())
    backend = build_backend(Settings(backend="local", model_path=path))
    assert isinstance(backend, LocalWorkerBackend)
    deadline = time.monotonic() + 10
    while backend.worker_pid is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.worker_pid is not None  # loading before anything is asked
    backend.close()
    in_process = Settings(backend="local", model_path=path, embedded_isolation=False)
    assert isinstance(build_backend(in_process), LocalBackend)


def test_exit_causes() -> None:
    assert exit_cause(-11) == "signal 11"
    assert exit_cause(1) == "exit status 1"


def test_a_stream_through_the_worker_has_the_in_process_shape(
    worker_backend: LocalWorkerBackend,
) -> None:
    deltas = list(worker_backend.stream(chat(max_tokens=8)))
    assert {type(delta) for delta in deltas[:-2]} == {TextDelta}
    assert isinstance(deltas[-2], Finish) and deltas[-2].reason in {"stop", "length"}
    usage = deltas[-1]
    assert isinstance(usage, Usage) and 0 < usage.completion_tokens <= 8
    assert worker_backend.worker_pid != os.getpid()
    assert worker_backend.capabilities.embedded and not worker_backend.capabilities.suffix


def test_respond_through_the_worker(worker_backend: LocalWorkerBackend) -> None:
    reply = worker_backend.respond(CompletionRequest("m", "1, 2, 3,", params=GenerationParams(5)))
    assert reply.text and reply.finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    with pytest.raises(BackendError, match="suffix"):
        worker_backend.respond(CompletionRequest("m", "x", suffix="y"))


def test_token_counting_is_forwarded_to_the_worker(worker_backend: LocalWorkerBackend) -> None:
    """count_tokens and chat_overhead run on the worker's model, as LocalBackend's would; a
    method that is not forwarded is one BackendError line, and the worker carries on."""
    texts = ["Hello there.", "Tell me a long story about a dragon.", "\n  indented"]
    in_process = LocalBackend(worker_backend.spec.model_path)
    assert worker_backend.count_tokens(texts) == in_process.count_tokens(texts)
    assert worker_backend.chat_overhead() == in_process.chat_overhead() == (3, 4, 21, "\n")
    pid = worker_backend.worker_pid
    with pytest.raises(BackendError, match="stream_text") as caught:
        worker_backend._ask("call", ("stream_text", ()))
    assert "\n" not in str(caught.value)
    assert text_of(list(worker_backend.stream(chat(max_tokens=3))))
    assert worker_backend.worker_pid == pid


def test_counts_through_the_worker_are_the_prompt_tokens_it_reports(
    worker_backend: LocalWorkerBackend,
) -> None:
    model = worker_backend.default_model("chat")
    counter = counter_for(model, worker_backend)
    history = [*STORY, Message("assistant", "\n\nOnce, a dragon 🐉."), Message("user", "  More?")]
    for system in (None, "Be brief."):
        request = ChatRequest(model, tuple(history), system=system, params=GenerationParams(1))
        usage = list(worker_backend.stream(request))[-1]
        assert isinstance(usage, Usage)
        assert counter.count_messages(system, history) == Count(usage.prompt_tokens, True)


def test_closing_the_stream_stops_the_worker_promptly_and_keeps_it(
    worker_backend: LocalWorkerBackend,
) -> None:
    stream = worker_backend.stream(chat(max_tokens=400))
    assert isinstance(next(stream), TextDelta)
    pid = worker_backend.worker_pid
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.2
    after = list(worker_backend.stream(chat(max_tokens=4)))
    assert isinstance(after[-1], Usage) and after[-1].completion_tokens <= 4
    assert worker_backend.worker_pid == pid  # the cancelled reply ended: no restart needed


@pytest.mark.parametrize("signal_number", [signal.SIGSEGV, signal.SIGKILL])
def test_a_worker_killed_mid_reply_is_one_error_line_then_the_next_turn_works(
    worker_backend: LocalWorkerBackend, signal_number: int
) -> None:
    stream = worker_backend.stream(chat(max_tokens=400))
    received = [next(stream)]
    crashed_pid = worker_backend.worker_pid
    assert crashed_pid is not None
    os.kill(crashed_pid, signal_number)
    with pytest.raises(BackendError) as caught:
        received.extend(stream)  # what was already in the pipe, then the crash
    assert str(caught.value) == CRASH_LINE.format(int(signal_number))
    assert text_of(received)
    answer = list(worker_backend.stream(chat(max_tokens=6)))
    assert text_of(answer) and isinstance(answer[-1], Usage)
    assert worker_backend.worker_pid != crashed_pid


def test_ctrl_c_never_reaches_the_worker(worker_backend: LocalWorkerBackend) -> None:
    """The terminal sends SIGINT to the whole process group: the worker must not die of it,
    neither while it starts (before its own code runs) nor while it generates."""
    fresh = LocalWorkerBackend(worker_backend.spec.model_path)
    fresh.prepare()
    deadline = time.monotonic() + 10
    while fresh.worker_pid is None and time.monotonic() < deadline:
        time.sleep(0.001)
    pid = fresh.worker_pid
    assert pid is not None
    for _ in range(20):  # through the interpreter's start-up
        os.kill(pid, signal.SIGINT)
        time.sleep(0.01)
    stream = fresh.stream(chat(max_tokens=12))
    first = next(stream)
    os.kill(pid, signal.SIGINT)
    assert text_of([first, *stream])
    assert fresh.worker_pid == pid
    fresh.close()
    assert process_gone(pid)


def test_a_missing_model_file_is_one_line_from_the_worker(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    backend = LocalWorkerBackend(missing)
    with pytest.raises(BackendError, match="model file not found") as caught:
        list(backend.stream(chat(max_tokens=4)))
    assert str(missing) in str(caught.value)
    with pytest.raises(BackendError, match="model file not found"):
        backend.respond(chat(max_tokens=4))
    backend.close()


def test_the_worker_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    backend = LocalWorkerBackend(default_model_path(), n_ctx=512)
    backend.prepare()
    assert text_of(list(backend.stream(chat(max_tokens=3))))
    backend.close()
    assert capfd.readouterr() == ("", "")


def test_the_worker_ends_when_chatrepl_dies_mid_reply() -> None:
    """No orphan: killed with SIGKILL (no atexit, no cleanup), chatrepl's worker follows."""
    script = textwrap.dedent(
        """
        import os, signal
        from chatrepl.backends.base import ChatRequest
        from chatrepl.backends.local_backend import default_model_path
        from chatrepl.backends.local_worker import LocalWorkerBackend
        from chatrepl.conversation.messages import GenerationParams, Message

        if __name__ == "__main__":
            backend = LocalWorkerBackend(default_model_path())
            request = ChatRequest(
                "m", (Message("user", "A long story, please."),), params=GenerationParams(400)
            )
            stream = backend.stream(request)
            next(stream)
            print(backend.worker_pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert process_gone(int(result.stdout))


def test_a_crash_in_the_repl_is_one_line_and_the_session_keeps_every_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second reply's worker is killed with SIGSEGV after its first token: one line, the
    earlier turns and the partial reply are on disk, and the third turn gets a fresh worker."""
    home = isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("CHATREPL_CHAT_MAX_TOKENS", "300")
    real_stream = LocalWorkerBackend.stream
    pids: list[int | None] = []  # the worker that served each turn

    def crash_in_second_reply(self: LocalWorkerBackend, request: ChatRequest) -> Iterator[Delta]:
        turn = len(pids) + 1
        deltas = real_stream(self, request)
        try:
            for index, delta in enumerate(deltas):
                yield delta
                if turn == 2 and index == 0:
                    os.kill(self.worker_pid, signal.SIGSEGV)
        finally:
            deltas.close()
            pids.append(self.worker_pid)

    monkeypatch.setattr(LocalWorkerBackend, "stream", crash_in_second_reply)
    result = run_repl(lines("Say hi.", "Tell me a long story.", "Name a fruit."))
    assert result.output.count(CRASH_LINE.format(11)) == 1
    assert "Traceback" not in result.output
    saved = json.loads(next((home / "sessions").glob("*.json")).read_text())
    roles = [(m["role"], m.get("interrupted", False)) for m in saved["messages"]]
    assert roles == [
        ("user", False),
        ("assistant", False),
        ("user", False),
        ("assistant", True),  # the partial reply, kept
        ("user", False),
        ("assistant", False),
    ]
    assert all(m["content"] for m in saved["messages"])
    assert saved["messages"][0]["content"] == "Say hi."
    assert pids[0] == pids[1] != pids[2]  # same worker for turns 1-2, a fresh one for turn 3


def test_ctrl_c_in_a_terminal_stops_the_reply_not_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real program in a pseudo-terminal: Ctrl-C stops an embedded reply, the same worker
    answers the next message, and leaving chatrepl leaves no worker behind."""
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("CHATREPL_CHAT_MAX_TOKENS", "400")
    child = spawn_interruptible(dict(os.environ))
    child.expect(PROMPT["chat"])
    type_line(child, "Say hi.")
    child.expect("tokens", timeout=60)  # the usage footer: that reply has ended
    child.expect(PROMPT["chat"])
    type_line(child, "Tell me a long story about a dragon.")
    child.expect("waiting for", timeout=30)  # the spinner, until the first token
    child.expect(REPLY_TEXT, timeout=60)  # then the live tail shows the reply's text
    worker = spawned_worker(child.pid)
    child.sendintr()  # at once: a short reply could have ended by the time a pause was over
    child.expect("interrupted", timeout=10)
    child.expect(PROMPT["chat"])
    type_line(child, "Name a fruit.")
    child.expect("tokens", timeout=60)
    child.expect(PROMPT["chat"])  # keys typed before the prompt is back are not read as keys
    assert "crashed" not in child.before
    assert spawned_worker(child.pid) == worker
    child.sendcontrol("d")
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 0
    assert process_gone(worker)
