"""A local OpenAI-compatible HTTP server for tests (standard library only)."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-3.5-turbo-instruct", "test-model")
CREATED = 1_700_000_000
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
HUGE_SIZE = 10_000_000  # characters in a "huge" reply
HUGE_CHUNK = 65_536  # characters per event of a "huge" stream
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n"
    "<body><h1>Welcome to nginx!</h1><p>It works.</p></body></html>\n"
)
BROKEN_JSON = '{"id": "chatcmpl-broken", "object": "chat.completion.chunk", "choices": [{'
# Misbehaviours ``FakeOpenAI.inject`` can make the next generation request meet.
FAULT_KINDS = {
    "hang": "accept the request and never send the headers",
    "stall": "stream `after` events, then send nothing more (the connection stays open)",
    "bad_json": "stream `after` events, then one whose data is not JSON",
    "html": "answer 200 with an HTML page",
    "error_event": "stream `after` events, then an `event: error` carrying an OpenAI error",
    "huge": "a reply of `size` characters (10 MB by default), streamed in 64 KB events",
    "reset": "stream `after` events, then reset the connection (TCP RST)",
    "no_choices": "a response (or every chunk) without `choices`",
}


@dataclass
class Recorded:
    """One request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    """The text of one reply, the tool calls it makes, and the finish reason it ends with.

    A tool call is ``{"id": ..., "name": ..., "arguments": "<JSON text>"}``; streamed, each
    call's arguments arrive in pieces, the calls' pieces interleaved (as parallel calls do).
    """

    text: str
    finish_reason: str = "stop"
    tool_calls: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Fault:
    """An injected failure: an HTTP error (``status``) or a dropped connection (``drop_after``)."""

    path: str | None
    persistent: bool = False
    status: int = 0
    message: str | None = None
    style: str = "openai"
    error_type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    drop_after: int | None = None
    kind: str | None = None  # one of FAULT_KINDS
    after: int = 1  # events sent before a stream fault strikes
    size: int = HUGE_SIZE

    def matches(self, method: str, path: str) -> bool:
        """Return whether this fault applies to a request (default: generation POSTs only)."""
        if self.path is None:
            return method == "POST" and _endpoint(path) in ("chat", "completion")
        return path_matches(path, self.path)


# ---------------------------------------------------------------- payloads (pure functions)


def _endpoint(path: str) -> str | None:
    """Classify a path as "chat", "completion", "models", "model" or None (unknown)."""
    path = path.rstrip("/")
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/completions"):
        return "completion"
    if path.endswith("/models"):
        return "models"
    return "model" if "/models/" in path else None


def path_matches(path: str, suffix: str) -> bool:
    """Return whether ``path`` ends with ``suffix``; "/completions" does not match chat paths."""
    if not path.endswith(suffix):
        return False
    wanted = _endpoint("/" + suffix.lstrip("/"))
    return wanted is None or wanted == _endpoint(path)


def _is_stream(rec: Recorded) -> bool:
    """Return whether a request asks for a streamed chat or completion reply."""
    kind = _endpoint(rec.path)
    return kind in ("chat", "completion") and bool(rec.body and rec.body.get("stream"))


def _text_of(content: Any) -> str:
    """Return the text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_text(body: dict[str, Any]) -> str:
    """Return all prompt text of a chat or completion request, for token counting."""
    if "messages" in body:
        return " ".join(_text_of(m.get("content")) for m in body["messages"] if isinstance(m, dict))
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))


def default_reply(kind: str, body: dict[str, Any]) -> str:
    """Return the deterministic default reply: chat echoes, completion continues the prompt."""
    if kind == "chat":
        messages = body.get("messages") or [{}]
        if messages[-1].get("role") == "tool":  # after a tool ran: say what it returned
            return "Tool said: " + _text_of(messages[-1].get("content"))
        users = [m for m in messages if m.get("role") == "user"]
        return "Echo: " + (_text_of(users[-1].get("content")) if users else "")
    words = str(body.get("prompt") or "").split()
    return " and then " + (words[-1] if words else "nothing")


def within_max_tokens(reply: Reply, body: dict[str, Any]) -> Reply:
    """A default reply longer than ``max_tokens`` words is cut there, as a model would stop."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    words = reply.text.split(" ")
    if not isinstance(limit, int) or len(words) <= limit:
        return reply
    return Reply(" ".join(words[:limit]), "length")


def usage(body: dict[str, Any], text: str) -> dict[str, int]:
    """Return a usage object counting words as tokens."""
    prompt = max(1, len(_prompt_text(body).split()))
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def split_text(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of ``size`` characters."""
    return [text[i : i + size] for i in range(0, len(text), max(1, size))]


def _head(kind: str, ident: str, model: str) -> dict[str, Any]:
    """Return the fields every chat/completion object and chunk starts with."""
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
    return {
        "id": ident,
        "object": obj,
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
    }


def _choice(kind: str, piece: str | None, finish: str | None, first: bool) -> dict[str, Any]:
    """Return one streamed choice: a chat delta or a completion text piece."""
    if kind == "completion":
        return {"text": piece or "", "index": 0, "logprobs": None, "finish_reason": finish}
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
    if piece is not None:
        delta["content"] = piece
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _tool_call_choices(calls: list[dict[str, str]], chunk_size: int) -> list[dict[str, Any]]:
    """Streamed tool-call deltas: each call's head, then argument pieces, calls interleaved."""
    heads = [
        {"index": i, "id": c["id"], "type": "function",
         "function": {"name": c["name"], "arguments": ""}}
        for i, c in enumerate(calls)
    ]  # fmt: skip
    pieces = [split_text(c["arguments"], chunk_size) for c in calls]
    deltas = [heads] if heads else []
    for step in range(max((len(p) for p in pieces), default=0)):
        deltas.append([
            {"index": i, "function": {"arguments": p[step]}}
            for i, p in enumerate(pieces) if step < len(p)
        ])  # fmt: skip
    return [
        {"index": 0, "delta": {"tool_calls": d}, "logprobs": None, "finish_reason": None}
        for d in deltas
    ]


def stream_events(
    kind: str, body: dict[str, Any], reply: Reply, ident: str, *, chunk_size: int, with_usage: bool
) -> list[dict[str, Any]]:
    """Return the SSE payloads of a streamed chat or completion reply (without ``[DONE]``)."""
    head = _head(kind, ident, str(body.get("model", "")))
    pieces = split_text(reply.text, chunk_size)
    choices = [_choice(kind, p, None, False) for p in pieces]
    if kind == "chat":
        choices.insert(0, _choice(kind, None, None, True))
    if kind == "chat":
        choices += _tool_call_choices(reply.tool_calls, chunk_size)
    choices.append(_choice(kind, None, reply.finish_reason, False))
    extra = {"usage": None} if with_usage else {}
    events = [{**head, "choices": [c], **extra} for c in choices]
    if with_usage:
        events.append({**head, "choices": [], "usage": usage(body, reply.text)})
    return events


def full_response(
    kind: str, body: dict[str, Any], reply: Reply, ident: str, with_usage: bool
) -> dict[str, Any]:
    """Return a non-streamed ``chat.completion`` or ``text_completion`` object."""
    head = _head(kind, ident, str(body.get("model", "")))
    if kind == "chat":
        head["object"] = "chat.completion"
        message = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in reply.tool_calls
            ]  # fmt: skip
        choice = {"index": 0, "message": message, "logprobs": None}
    else:
        choice = {"text": reply.text, "index": 0, "logprobs": None}
    result = {**head, "choices": [{**choice, "finish_reason": reply.finish_reason}]}
    return {**result, "usage": usage(body, reply.text)} if with_usage else result


_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: (
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 130000 tokens. Please reduce the length of the messages.",
    ),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-test. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, "
        "Requested 1. Please try again in 20s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}


def error_body(fault: Fault, model: str) -> dict[str, Any]:
    """Return the JSON error body for an HTTP fault, OpenAI style or FastAPI ``detail`` style."""
    default_type = "server_error" if fault.status >= 500 else "invalid_request_error"
    etype, code, template = _ERRORS.get(fault.status, (default_type, None, "Injected error"))
    message = fault.message if fault.message is not None else template.format(model=model)
    if fault.style == "detail":
        return {"detail": message}
    etype = fault.error_type or etype
    return {"error": {"message": message, "type": etype, "param": None, "code": fault.code or code}}


def sse(payload: dict[str, Any] | str | bytes) -> bytes:
    """Encode one server-sent event ``data:`` line (bytes are sent as they are)."""
    if isinstance(payload, bytes):
        return payload
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def error_event(message: str = "The server had an error while processing your request.") -> bytes:
    """An SSE ``event: error`` carrying an OpenAI error object, as some servers send mid-stream."""
    error = {"message": message, "type": "server_error", "param": None, "code": None}
    return b"event: error\n" + sse({"error": error})


Event = dict[str, Any] | str | bytes


def faulty_events(events: list[Event], fault: Fault | None) -> list[Event]:
    """The stream's events as ``fault`` changes them (stall and reset act while sending)."""
    if fault is None or fault.kind is None:
        return events
    if fault.kind == "no_choices":
        return [
            {k: v for k, v in e.items() if k != "choices"} if isinstance(e, dict) else e
            for e in events
        ]
    if fault.kind == "bad_json":
        return [*events[: fault.after], BROKEN_JSON, *events[fault.after :]]
    if fault.kind == "error_event":
        return [*events[: fault.after], error_event()]
    return events


def without_choices(response: dict[str, Any]) -> dict[str, Any]:
    """A whole response with its ``choices`` taken out."""
    return {k: v for k, v in response.items() if k != "choices"}


# ---------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection; all state lives on ``self.server.fake``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed ACK
    server: _Server

    def setup(self) -> None:
        """Register this thread so ``stop()`` can wait for it."""
        super().setup()
        self.server.track_thread(add=True)

    def finish(self) -> None:
        """Unregister; a peer that already left is not an error."""
        self.server.track_thread(add=False)
        self.server.track_connection(self.connection, add=False)
        with contextlib.suppress(_DISCONNECTS):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Handle a GET request."""
        self._dispatch(None)

    def do_POST(self) -> None:
        """Handle a POST request."""
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._dispatch(
            body if isinstance(body, dict) else None, bad_json=bool(raw) and body is None
        )

    def _dispatch(self, body: dict[str, Any] | None, bad_json: bool = False) -> None:
        """Record the request, then answer it (fault, error, or normal reply)."""
        fake = self.server.fake
        url = urlsplit(self.path)
        rec = Recorded(
            self.command,
            url.path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            dict(parse_qsl(url.query)),
        )
        fake.record(rec)
        fault = fake.take_fault(rec.method, rec.path)
        if fault is not None and fault.kind in ("hang", "html"):
            return self._hang() if fault.kind == "hang" else self._send_html()
        if fault is not None and fault.kind is None and fault.drop_after is None:
            return self._send_fault(fault, body)
        if fault is not None and fault.drop_after is not None and not _is_stream(rec):
            self.close_connection = True  # dropped before any response
            return None
        if (
            fake.api_key is not None
            and rec.headers.get("authorization") != f"Bearer {fake.api_key}"
        ):
            return self._send_fault(Fault(None, status=401), body)
        if bad_json:
            msg = "We could not parse the JSON body of your request."
            return self._send_fault(Fault(None, status=400, message=msg, code="invalid_json"), body)
        self._route(rec, fault)

    def _route(self, rec: Recorded, fault: Fault | None) -> None:
        """Send the normal response for a recorded request."""
        kind = _endpoint(rec.path)
        fake = self.server.fake
        if rec.method == "GET" and kind == "models":
            return self._send_json(200, fake.models_payload())
        if rec.method == "GET" and kind == "model":
            model_id = rec.path.rsplit("/", 1)[-1]
            model = fake.model_payload(model_id)
            if model is None:
                return self._send_fault(Fault(None, status=404), {"model": model_id})
            return self._send_json(200, model)
        if rec.method == "POST" and kind in ("chat", "completion") and rec.body is not None:
            return self._generate(kind, rec.body, fault)
        msg = f"Invalid URL ({rec.method} {rec.path})"
        self._send_fault(Fault(None, status=404, message=msg, code="unknown_url"), rec.body)

    def _generate(self, kind: str, body: dict[str, Any], fault: Fault | None) -> None:
        """Answer a chat or completion request, streamed or not."""
        fake = self.server.fake
        reply = fake.next_reply(kind, body)
        chunk_size = fake.chunk_size
        if fault is not None and fault.kind == "huge":
            reply, chunk_size = Reply("x" * fault.size, "stop"), HUGE_CHUNK
        ident = fake.new_id("chatcmpl" if kind == "chat" else "cmpl")
        if not body.get("stream"):
            response = full_response(kind, body, reply, ident, not fake.no_usage)
            return self._send_whole(response, fault)
        opts = body.get("stream_options") or {}
        with_usage = bool(opts.get("include_usage")) and not fake.no_usage
        events = stream_events(
            kind, body, reply, ident, chunk_size=chunk_size, with_usage=with_usage
        )
        self._stream(faulty_events([*events, "[DONE]"], fault), fault)

    def _send_whole(self, response: dict[str, Any], fault: Fault | None) -> None:
        """Send a whole (non-streamed) response, as ``fault`` spoils it."""
        kind = fault.kind if fault is not None else None
        if kind == "reset":
            return self._reset()
        if kind == "stall":
            self._send_head(200, "application/json", {"Content-Length": "1000"})
            return self._hang()
        if kind == "bad_json":
            return self._send_bytes(200, "application/json", BROKEN_JSON.encode())
        if kind == "error_event":
            return self._send_json(200, {"error": error_body(Fault(None, status=500), "")["error"]})
        self._send_json(200, without_choices(response) if kind == "no_choices" else response)

    def _send_fault(self, fault: Fault, body: dict[str, Any] | None) -> None:
        """Send an HTTP error response for ``fault``."""
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
            headers["retry-after"] = str(math.ceil(fault.retry_after))
        self._send_json(
            fault.status, error_body(fault, str((body or {}).get("model", ""))), headers
        )

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """Send a complete JSON response with a Content-Length."""
        self._send_bytes(status, "application/json", json.dumps(payload).encode(), headers)

    def _send_html(self) -> None:
        """Answer 200 with a web page, as a misconfigured URL or a captive portal does."""
        self._send_bytes(200, "text/html; charset=utf-8", HTML_PAGE.encode())

    def _send_bytes(
        self, status: int, content_type: str, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Send a complete response with a Content-Length."""
        self._send_head(status, content_type, {"Content-Length": str(len(data)), **(headers or {})})
        self.wfile.write(data)

    def _send_head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        """Send the status line and headers."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _hang(self) -> None:
        """Send nothing more until the client hangs up or the server stops."""
        while self._pause(0.1):
            pass
        self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection: the client gets a TCP RST (ECONNRESET), not a clean close."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _stream(self, events: list[Event], fault: Fault | None) -> None:
        """Send SSE events with chunked encoding, honouring delay, faults and client closes."""
        self._send_head(
            200,
            "text/event-stream; charset=utf-8",
            {"Cache-Control": "no-cache", "Transfer-Encoding": "chunked"},
        )
        try:
            self._send_events(events, fault)
        except _DISCONNECTS:
            if not self.server.stopping.is_set():
                self.server.fake.note_cancelled()
            self.close_connection = True

    def _send_events(self, events: list[Event], fault: Fault | None) -> None:
        """Write the events as chunks; stop early on a fault, a client close or ``stop()``."""
        drop_after = fault.drop_after if fault is not None else None
        strike = fault.after if fault is not None and fault.kind in ("stall", "reset") else None
        for index, event in enumerate(events):
            if drop_after is not None and index >= drop_after:
                self.close_connection = True  # no terminating chunk: an abrupt close
                return
            if index == strike:
                assert fault is not None
                return self._hang() if fault.kind == "stall" else self._reset()
            if index and not self._pause(self.server.fake.delay):
                self.close_connection = True
                return
            self._write_chunk(sse(event))
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk (an empty one ends the body)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _pause(self, seconds: float) -> bool:
        """Wait between chunks; return False if the client hung up or the server is stopping."""
        if seconds <= 0:
            return not self.server.stopping.is_set()
        readable, _, _ = select.select([self.connection], [], [], seconds)
        if self.server.stopping.is_set():
            return False
        if readable and _peer_closed(self.connection):
            self.server.fake.note_cancelled()
            return False
        return True


def _peer_closed(conn: socket.socket) -> bool:
    """Return whether a readable socket signals that the peer has closed it."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that knows its connections and never prints tracebacks."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._open_conns: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Register each accepted connection (before its thread starts), then serve it."""
        self.track_connection(request, add=True)
        super().process_request(request, client_address)

    def track_connection(self, conn: socket.socket, add: bool) -> None:
        """Add or remove an open connection."""
        with self._lock:
            if add:
                self._open_conns.add(conn)
            else:
                self._open_conns.discard(conn)

    def track_thread(self, add: bool) -> None:
        """Add or remove the current handler thread."""
        thread = threading.current_thread()
        with self._lock:
            if add:
                self._handler_threads.add(thread)
            else:
                self._handler_threads.discard(thread)

    def close_connections(self, timeout: float) -> None:
        """Shut down every open connection and wait for the handler threads to finish."""
        with self._lock:
            conns, threads = list(self._open_conns), list(self._handler_threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Swallow client disconnects; record anything else for the test to report."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (*_DISCONNECTS, ConnectionError)):
            self.fake.errors.append(exc)


# ---------------------------------------------------------------- public API


class FakeOpenAI:
    """An OpenAI-compatible server on 127.0.0.1 for tests.

    Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions`` (streamed as SSE with
    chunked encoding, or whole), ``GET /v1/models`` and ``GET /v1/models/{id}``. Any path that
    ends like these works too (e.g. Azure's ``/openai/deployments/x/chat/completions``).

    Replies (for chat and completion requests, in this order of precedence):
      * ``server.queue(text, finish_reason="stop")`` — one-off replies, consumed in order;
      * ``server.reply = "text"`` — every following reply (``None`` restores the default);
      * default: chat → ``"Echo: " + last user message``; completion → ``" and then <last
        word of the prompt>"``.
    Replies stream in ``server.chunk_size``-character pieces; usage counts words.

    Knobs: ``server.delay`` seconds between chunks; ``server.no_usage = True`` never sends usage
    (like llama.cpp); ``server.api_key = "sk-x"`` makes other keys get 401; ``server.models``.

    Faults apply to the next chat/completion POST (or to the next request whose path ends with
    ``path=``), once, unless ``persistent=True`` (until ``clear_faults()``):
      * ``server.fail(status, message=None, style="openai"|"detail", code=None,
        error_type=None, retry_after=None)`` — an HTTP error; default messages and codes
        mimic OpenAI for 400 (context_length_exceeded), 401, 403, 404 (model_not_found),
        429, 500 and 503;
      * ``server.drop_after(n_chunks)`` — stream n SSE events then close the connection
        without ``[DONE]`` or the final chunk (a non-streamed request gets no response);
      * ``server.inject(kind, after=1, size=10_000_000)`` — one of ``FAULT_KINDS``: "hang"
        (no headers, ever), "stall" (silence after ``after`` events), "bad_json", "html" (a 200
        web page), "error_event", "huge" (a ``size``-character reply), "reset" (TCP RST after
        ``after`` events), "no_choices". A hung or stalled handler waits until the client
        hangs up or ``stop()``.

    Recording: ``server.requests`` (list of ``Recorded``), ``server.last(suffix)``,
    ``server.bodies(suffix)``. Suffixes match path ends by endpoint: ``"/completions"`` means
    the legacy endpoint only, ``"/chat/completions"`` chat only, ``""`` everything.
    ``server.cancelled`` counts streams the client closed early and ``server.cancelled_event``
    is set on the first one. Unexpected handler exceptions are collected in ``server.errors``
    (never printed; the ``fake_server`` fixture fails the test if there are any).
    """

    def __init__(self, models: list[str] | None = None, chunk_size: int = 4) -> None:
        self.models = list(models or DEFAULT_MODELS)
        self.chunk_size = chunk_size
        self.reply: str | None = None
        self.delay = 0.0
        self.no_usage = False
        # Fields a server adds to a model in /models (vLLM's max_model_len, llama.cpp's meta).
        self.model_extras: dict[str, dict[str, Any]] = {}
        self.api_key: str | None = None
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []
        self.cancelled = 0
        self.cancelled_event = threading.Event()
        self._replies: list[Reply] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeOpenAI:
        """Bind a free port and serve from a daemon thread."""
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"FakeOpenAI:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the socket, and join the threads."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections(timeout=5.0)
        server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The base URL to give the SDK, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # configuring replies and faults

    def queue(self, text: str, finish_reason: str = "stop") -> None:
        """Use ``text`` for the next reply only (queued replies are used in order)."""
        with self._lock:
            self._replies.append(Reply(text, finish_reason))

    def queue_tool_calls(self, *calls: tuple[str, dict[str, Any]], text: str = "") -> None:
        """The next reply asks for tools: each call is (name, arguments); ids are call_1, ..."""
        with self._lock:
            first = sum(len(r.tool_calls) for r in self._replies) + len(self.requests) + 1
            made = [
                {"id": f"call_{first + i}", "name": name, "arguments": json.dumps(arguments)}
                for i, (name, arguments) in enumerate(calls)
            ]
            self._replies.append(Reply(text, "tool_calls", made))

    def fail(
        self,
        status: int,
        message: str | None = None,
        *,
        style: str = "openai",
        code: str | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        path: str | None = None,
        persistent: bool = False,
    ) -> None:
        """Answer the next matching request with HTTP ``status`` and an error body."""
        if style not in ("openai", "detail"):
            raise ValueError(f"unknown error style {style!r}")
        self._add_fault(
            Fault(path, persistent, status, message, style, error_type, code, retry_after)
        )

    def drop_after(
        self, n_chunks: int, *, path: str | None = None, persistent: bool = False
    ) -> None:
        """Stream ``n_chunks`` SSE events of the next matching reply, then hang up."""
        self._add_fault(Fault(path, persistent, drop_after=n_chunks))

    def inject(
        self,
        kind: str,
        *,
        after: int = 1,
        size: int = HUGE_SIZE,
        path: str | None = None,
        persistent: bool = False,
    ) -> None:
        """Misbehave on the next matching request in one of the ways of ``FAULT_KINDS``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self._add_fault(Fault(path, persistent, kind=kind, after=after, size=size))

    def clear_faults(self) -> None:
        """Forget every pending or persistent fault."""
        with self._lock:
            self._faults.clear()

    # inspecting what was received

    def last(self, path_suffix: str = "") -> Recorded:
        """Return the most recent request whose path ends with ``path_suffix``."""
        with self._lock:
            found = [r for r in self.requests if path_matches(r.path, path_suffix)]
        if not found:
            seen = [f"{r.method} {r.path}" for r in self.requests]
            raise LookupError(f"no request to *{path_suffix}; received {seen}")
        return found[-1]

    def bodies(self, path_suffix: str = "") -> list[dict[str, Any]]:
        """Return the JSON bodies of all requests whose path ends with ``path_suffix``."""
        with self._lock:
            return [
                r.body
                for r in self.requests
                if path_matches(r.path, path_suffix) and r.body is not None
            ]

    # used by the handler threads

    def record(self, rec: Recorded) -> None:
        """Append a received request."""
        with self._lock:
            self.requests.append(rec)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return the first fault matching a request, consuming it unless persistent."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None and not fault.persistent:
                self._faults.remove(fault)
            return fault

    def next_reply(self, kind: str, body: dict[str, Any]) -> Reply:
        """Return (and consume) the reply for a chat or completion request."""
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        reply = Reply(self.reply if self.reply is not None else default_reply(kind, body))
        return within_max_tokens(reply, body)

    def new_id(self, prefix: str) -> str:
        """Return a fresh response id such as ``chatcmpl-fake-3``."""
        return f"{prefix}-fake-{next(self._ids)}"

    def note_cancelled(self) -> None:
        """Count a stream the client closed before it ended."""
        with self._lock:
            self.cancelled += 1
        self.cancelled_event.set()

    def models_payload(self) -> dict[str, Any]:
        """Return the ``GET /v1/models`` list object."""
        return {
            "object": "list",
            "data": [{**_model(m), **self.model_extras.get(m, {})} for m in self.models],
        }

    def model_payload(self, model_id: str) -> dict[str, Any] | None:
        """Return one model object, or None if it is not in ``models``."""
        return _model(model_id) if model_id in self.models else None

    def _add_fault(self, fault: Fault) -> None:
        """Queue a fault."""
        with self._lock:
            self._faults.append(fault)


def _model(model_id: str) -> dict[str, Any]:
    """Return one OpenAI model object."""
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "test"}
