"""The request log (opt-in: `--log`, `log = true`): one JSON line per API request.

Each line: time, backend, base URL (never the key), model, mode, parameters, message count,
tokens, cost, time to the first token, duration, tokens per second, finish reason, retries and
error. Message bodies only with `log_bodies = true`. The file is private (0600).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chatrepl.backends.base import ChatRequest, Request
from chatrepl.backends.wire import chat_messages
from chatrepl.conversation.messages import Message, now
from chatrepl.files import private_file


@dataclass
class RequestRecord:
    """One API request, as logged."""

    time: str
    backend: str
    base_url: str | None
    model: str
    mode: str
    kind: str  # "reply" or "summary"
    parameters: dict[str, Any]
    messages: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_estimated: bool = False
    cost_usd: str | None = None
    first_token_s: float | None = None
    duration_s: float | None = None
    tokens_per_s: float | None = None
    finish_reason: str | None = None
    retries: int = 0
    error: str | None = None
    request: Any = field(default=None)  # the sent messages or prompt, with log_bodies
    reply: str | None = None  # with log_bodies


def record_of(
    request: Request, reply: Message | None, error: str | None, kind: str = "reply"
) -> RequestRecord:
    """A log line's data from a request and what came back."""
    is_chat = isinstance(request, ChatRequest)
    record = RequestRecord(
        time=now(),
        backend=reply.backend if reply and reply.backend else "",
        base_url=None,
        model=request.model,
        mode="chat" if is_chat else "complete",
        kind=kind,
        parameters=request.params.to_dict(),
        messages=len(request.messages) + bool(request.system) if is_chat else 1,
        error=error,
    )
    if reply is not None:
        _add_reply(record, reply)
    return record


def _add_reply(record: RequestRecord, reply: Message) -> None:
    from chatrepl.context.meter import tokens_per_second

    if reply.usage is not None:
        record.prompt_tokens = reply.usage.prompt_tokens
        record.completion_tokens = reply.usage.completion_tokens
        record.tokens_estimated = reply.estimated
    if reply.timing is not None:
        timing = reply.timing.to_dict()  # rounded to the millisecond
        record.first_token_s = timing.get("first_token")
        record.duration_s = timing.get("duration")
    speed = tokens_per_second(reply)
    record.tokens_per_s = round(speed, 1) if speed is not None else None
    record.finish_reason = reply.finish_reason


class RequestLog:
    """Appends records to a JSON-lines file, one line per write (safe across processes)."""

    def __init__(self, path: Path, bodies: bool = False) -> None:
        self.path = path
        self.bodies = bodies
        self._lock = threading.Lock()

    def write(self, record: RequestRecord, request: Request, reply: Message | None) -> None:
        """Append one line; bodies only when asked for."""
        data = asdict(record)
        if self.bodies:
            data["request"] = (
                chat_messages(request) if isinstance(request, ChatRequest) else request.prompt
            )
            data["reply"] = reply.content if reply is not None else None
        else:
            data.pop("request")
            data.pop("reply")
        line = json.dumps({k: v for k, v in data.items() if v is not None}, ensure_ascii=False)
        with self._lock:
            private_file(self.path)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")


def read_log(path: Path, last: int) -> list[dict[str, Any]]:
    """The last `last` records of a log (lines that are not JSON objects are skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[-last:]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


Observer = Callable[[Request, Message | None, str | None, str], None]


@dataclass
class RequestObserver:
    """Turns each finished request into a log line (a TurnRunner's and a summary's `observe`)."""

    log: RequestLog
    backend: Any  # the Backend: its name, where it is, and its retries
    cost_of: Callable[[Message], Any]

    def __call__(
        self, request: Request, reply: Message | None, error: str | None, kind: str = "reply"
    ) -> None:
        """Log one request; a log that cannot be written never stops the chat."""
        record = record_of(request, reply, error, kind)
        record.backend = self.backend.name
        record.base_url = self.backend.describe()
        record.retries = getattr(self.backend, "last_retries", 0)
        cost = self.cost_of(reply) if reply is not None else None
        record.cost_usd = str(cost) if cost is not None else None
        with contextlib.suppress(OSError):
            self.log.write(record, request, reply)
