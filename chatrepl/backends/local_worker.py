"""The embedded model in a worker process, so that a crash of native code is one error line.

llama.cpp is C++: a miscompiled kernel (see amx_guard.py) or a bad GGUF file can end the process
with a signal, which no `except` can catch. `LocalWorkerBackend` runs `LocalBackend` in a child
process and talks to it over a multiprocessing `Pipe` of small picklable messages:

    parent -> worker   the ModelSpec, then ("stream" | "respond", id, request)
                       ("call", id, (method, arguments))   ("cancel", id, None)
    worker -> parent   ("delta", id, delta)   ("end", id, None)   ("reply", id, result)
                       ("error", id, message)

The child is a fresh interpreter, started as multiprocessing's "spawn" starts one (fork and
exec: nothing is forked from a process that has threads, and it gets chatrepl's `sys.path`),
but by `subprocess`: "spawn" also starts multiprocessing's resource-tracker process, a third
interpreter that delayed the first token by about 0.5 s on a busy 2-core machine, for
semaphores the worker never uses.

When the worker dies, the parent reads end-of-file and raises one BackendError naming the
signal; the next request starts a fresh worker. The worker never sees Ctrl-C (SIGINT is blocked
while it is started, the mask is inherited, and it then ignores SIGINT), prints nothing (its
stdout and stderr are /dev/null) and exits as soon as the parent's end of the pipe closes, so
it never outlives chatrepl; when chatrepl exits normally it is ended at once.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatrepl.backends.base import Delta, Reply, Request, ignore_notice
from chatrepl.backends.local_backend import LocalBackend
from chatrepl.conversation.messages import Mode
from chatrepl.errors import BackendError, ChatReplError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

CRASHED = "the embedded model crashed ({cause}); your session is saved"
# A cancelled request normally ends within one token; past this, the worker is replaced.
STALE_REQUEST_WAIT = 1.0
STOP_WAIT = 1.0

Message = tuple[str, int, Any]
# The worker's command: chatrepl's sys.path (as "spawn" passes it on), then main().
BOOT = (
    "import sys; sys.path[:] = sys.argv[2:]; "
    "from chatrepl.backends.local_worker import main; main()"
)
FORWARDED = ("count_tokens", "chat_overhead")  # LocalBackend methods reachable by "call"


@dataclass(frozen=True)
class ModelSpec:
    """What the worker loads: the arguments of `LocalBackend`."""

    model_path: Path
    n_ctx: int = 2048
    n_threads: int = 1
    n_threads_batch: int = 1

    def backend(self) -> LocalBackend:
        """The in-process backend these arguments describe (nothing is loaded yet)."""
        return LocalBackend(self.model_path, self.n_ctx, self.n_threads, self.n_threads_batch)


class LocalWorkerBackend:
    """The embedded model run by `LocalBackend` in a worker process; same interface."""

    name = "local"

    def __init__(
        self, model_path: Path, n_ctx: int = 2048, n_threads: int = 1, n_threads_batch: int = 1
    ) -> None:
        self.spec = ModelSpec(Path(model_path), n_ctx, n_threads, n_threads_batch)
        self._local = self.spec.backend()  # answers the questions that need no model
        self.capabilities = self._local.capabilities
        self._worker: Worker | None = None
        self._start_lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._ids = itertools.count(1)
        self.on_notice = ignore_notice  # nothing to report: no network, no retries

    def describe(self) -> str:
        """The model file replies come from."""
        return self._local.describe()

    def default_model(self, mode: Mode) -> str:
        """The one model this backend runs, in both modes."""
        return self._local.default_model(mode)

    def list_models(self) -> list[str]:
        """The one model this backend runs."""
        return self._local.list_models()

    def prepare(self) -> None:
        """Start the worker (it imports llama_cpp and loads the model) unless one is running."""
        if self._worker is None or not self._worker.alive:
            thread = threading.Thread(target=self._start_quietly, name="local-worker-start")
            thread.daemon = True
            thread.start()

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id, when one has been started."""
        worker = self._worker
        return worker.process.pid if worker is not None else None

    def stream(self, request: Request) -> Iterator[Delta]:
        """Yield the worker's deltas; closing it tells the worker to stop generating."""
        with self._request_lock:
            worker, request_id = self._send("stream", request)
            try:
                while (delta := worker.next_answer(request_id)) is not None:
                    yield delta
            finally:
                worker.cancel(request_id)

    def respond(self, request: Request) -> Reply:
        """The whole reply at once, from the worker."""
        return self._ask("respond", request)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens in each text, counted by the model's own tokenizer in the worker."""
        return self._ask("call", ("count_tokens", (texts,)))

    def chat_overhead(self) -> tuple[int, int]:
        """The tokens the model's chat template adds, as `LocalBackend` reports them."""
        return self._ask("call", ("chat_overhead", ()))

    def close(self) -> None:
        """Stop the worker, if one is running."""
        with self._start_lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None

    def _start_quietly(self) -> None:
        """prepare()'s thread: a failure to start is reported by the request that needs it."""
        with contextlib.suppress(Exception):
            self._running_worker()

    def _ask(self, kind: str, payload: Any) -> Any:
        """Send one request and wait for its one answer."""
        with self._request_lock:
            worker, request_id = self._send(kind, payload)
            return worker.next_answer(request_id)

    def _send(self, kind: str, payload: Any) -> tuple[Worker, int]:
        """Send a request to a worker that has finished its previous one."""
        worker = self._running_worker()
        if not worker.settle(STALE_REQUEST_WAIT):
            worker.stop(wait=0)  # still busy with a cancelled request, or dead: replace it
            worker = self._running_worker()
        request_id = next(self._ids)
        worker.send((kind, request_id, payload))
        return worker, request_id

    def _running_worker(self) -> Worker:
        """The worker, or a fresh one when there is none or it has died."""
        with self._start_lock:
            if self._worker is None or not self._worker.alive:
                if self._worker is not None:
                    self._worker.stop()
                try:
                    self._worker = Worker(self.spec)
                except OSError as error:
                    raise BackendError(f"cannot start the embedded model: {error}") from error
            return self._worker


class Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, spec: ModelSpec) -> None:
        from multiprocessing.connection import Pipe  # ~15 ms: in prepare()'s thread

        self.connection, child_end = Pipe()
        with interrupts_blocked():
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(child_end.fileno()), *sys.path],
                pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # native code must not write over the REPL
                stderr=subprocess.DEVNULL,
            )
        child_end.close()
        self._finalizer = weakref.finalize(self, _end_process, self.process, self.connection)
        self.connection.send(spec)
        self.unfinished: int | None = None  # the request whose last message is still to come
        self.broken = False

    @property
    def alive(self) -> bool:
        """Whether the worker can take a request."""
        return not self.broken and self.process.poll() is None

    def send(self, message: Message) -> None:
        """Send a request; a dead worker is reported as the crash it was."""
        try:
            self.connection.send(message)
        except OSError:
            raise self._crashed() from None
        except BaseException:  # Ctrl-C mid-write: the pipe may hold half a message
            self.broken = True
            raise
        self.unfinished = message[1]

    def next_answer(self, request_id: int) -> Any:
        """The request's next payload: a delta, None at the stream's end, or the reply."""
        while True:
            kind, answer_id, payload = self._receive()
            if answer_id != request_id:
                continue  # the tail of a cancelled request
            if kind != "delta":
                self.unfinished = None
            if kind == "error":
                raise BackendError(payload)
            return payload

    def cancel(self, request_id: int) -> None:
        """Ask the worker to stop the request, unless it has ended; never waits."""
        if self.unfinished != request_id or self.broken:
            return
        try:
            self.connection.send(("cancel", request_id, None))
        except OSError:
            self.broken = True

    def settle(self, timeout: float) -> bool:
        """Read what is left of an unfinished request; False if it does not end in time."""
        try:
            while self.unfinished is not None:
                if not self.connection.poll(timeout):
                    return False
                got, answer_id, _ = self._read()
                if answer_id == self.unfinished and got in ("end", "reply", "error"):
                    self.unfinished = None
        except (ChatReplError, OSError):  # the worker is gone
            self.broken = True
            return False
        return True

    def stop(self, wait: float = STOP_WAIT) -> None:
        """Close the pipe (the worker exits on end-of-file); kill it if it has not after `wait`."""
        self.broken = True
        self.connection.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(wait)
        self._finalizer()

    def _receive(self) -> Message:
        """The next message. Ctrl-C while waiting for it is safe; inside `recv()` (a message
        half read) it leaves the pipe out of step, so this worker is then replaced."""
        try:
            self.connection.poll(None)
        except (EOFError, OSError):
            raise self._crashed() from None
        return self._read()

    def _read(self) -> Message:
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            raise self._crashed() from None
        except BaseException:
            self.broken = True
            raise

    def _crashed(self) -> BackendError:
        """The worker is gone: one line saying how it ended."""
        self.broken = True
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_WAIT)
        return BackendError(CRASHED.format(cause=exit_cause(self.process.returncode)))


def exit_cause(exitcode: int | None) -> str:
    """How a process ended, for the crash line: "signal 11", "exit status 1"."""
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        return f"signal {-exitcode}"
    return f"exit status {exitcode}"


@contextlib.contextmanager
def interrupts_blocked() -> Iterator[None]:
    """Block SIGINT in this thread: a child spawned inside inherits the mask, so Ctrl-C (sent
    to the terminal's whole process group) stops the reply in chatrepl, never the worker."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _end_process(process: subprocess.Popen[bytes], connection: Connection) -> None:
    """Close the pipe and make sure the worker is gone (also when chatrepl exits)."""
    connection.close()
    if process.poll() is None:
        process.kill()
    process.wait()


def main() -> None:
    """The worker process's entry (see BOOT): the pipe's file descriptor is its first argument."""
    from multiprocessing.connection import Connection

    connection = Connection(int(sys.argv[1]))
    serve(connection, connection.recv())


def serve(connection: Connection, spec: ModelSpec) -> None:
    """The worker's main: load the model, then answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    backend = spec.backend()
    backend.prepare()
    try:
        while True:
            _serve_one(connection, backend, *connection.recv())
    except (EOFError, OSError):
        return  # chatrepl has gone: so does the worker


def _serve_one(
    connection: Connection, backend: LocalBackend, kind: str, request_id: int, payload: Any
) -> None:
    """Answer one request ("cancel" of a request that has already ended needs nothing)."""
    if kind == "stream":
        _serve_stream(connection, backend, request_id, payload)
    elif kind == "respond":
        _answer(connection, request_id, backend.respond, payload)
    elif kind == "call":
        name, arguments = payload
        _answer(connection, request_id, _forwarded_call, backend, name, *arguments)


def _serve_stream(
    connection: Connection, backend: LocalBackend, request_id: int, request: Request
) -> None:
    deltas = backend.stream(request)
    try:
        for delta in deltas:
            connection.send(("delta", request_id, delta))
            if _cancelled(connection, request_id):
                break
        connection.send(("end", request_id, None))
    except (EOFError, OSError):
        raise  # chatrepl has gone
    except Exception as error:
        connection.send(("error", request_id, _error_line(error)))
    finally:
        deltas.close()


def _answer(
    connection: Connection, request_id: int, work: Callable[..., Any], *arguments: Any
) -> None:
    """Send what `work(*arguments)` returns, or the one line its failure is."""
    try:
        result = work(*arguments)
    except Exception as error:
        connection.send(("error", request_id, _error_line(error)))
    else:
        connection.send(("reply", request_id, result))


def _forwarded_call(backend: LocalBackend, name: str, *arguments: Any) -> Any:
    """Call one of the few `LocalBackend` methods the parent may call by name."""
    if name not in FORWARDED or not hasattr(backend, name):
        raise BackendError(f"the embedded model cannot do {name!r} in its worker")
    return getattr(backend, name)(*arguments)


def _cancelled(connection: Connection, request_id: int) -> bool:
    """Whether the parent has asked to stop this request (end-of-file raises EOFError)."""
    while connection.poll():
        kind, cancelled_id, _ = connection.recv()
        if kind == "cancel" and cancelled_id == request_id:
            return True
    return False


def _error_line(error: Exception) -> str:
    if isinstance(error, BackendError):
        return str(error)
    return f"the embedded model failed: {type(error).__name__}: {error}"
