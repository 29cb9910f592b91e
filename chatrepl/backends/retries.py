"""The SDK's own retries, made visible and bounded.

The OpenAI SDK retries 408, 409, 429, 5xx, timeouts and failed connections, sleeping between
tries, and honours a server's Retry-After up to two minutes. chatrepl waits at most a minute: a
response asking for longer is marked `x-should-retry: false` (the SDK's own switch), so the SDK
gives up at once and the error says when to try again. Each retry the SDK announces in its log
("Retrying request ... in N seconds") becomes one notice: "rate limited; retrying in 2 s (1 of 2)".
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chatrepl.backends.base import Notice

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is not waited for
SDK_LOGGER = "openai._base_client"
_RETRY_LINE = re.compile(r"Retrying request .*?in (\d+(?:\.\d+)?) seconds")
_REASONS = {408: "the server timed out", 409: "conflict", 429: "rate limited"}

EventHooks = dict[str, list[Callable[[Any], None]]]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a response asks to wait: `retry-after-ms`, else `retry-after` (seconds or a date)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            return None if math.isnan(seconds) else seconds
    return _seconds_until(headers.get("retry-after"))


def _seconds_until(date: str | None) -> float | None:
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - time.time()


def describe_wait(seconds: float) -> str:
    """A wait in words: "45 s", "20 min", "3 h", "2 days"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days" if math.isfinite(seconds) else "indefinitely"


def clock_after(seconds: float) -> str:
    """The local time `seconds` from now: "15:04", or with the date when that is not today."""
    when = time.localtime(time.time() + min(seconds, 10 * 365 * 86400))
    return time.strftime("%H:%M" if seconds < 12 * 3600 else "%Y-%m-%d %H:%M", when)


def _reason(status: int | None) -> str:
    if status is None:
        return "no answer from the server"
    if status >= 500:
        return f"server error {status}"
    return _REASONS.get(status, f"status {status}")


def _seconds_text(seconds: float) -> str:
    """2 -> "2", 0.25 -> "0.2", 12.6 -> "13"."""
    return f"{seconds:.1f}".removesuffix(".0") if seconds < 10 else f"{seconds:.0f}"


class RetryWatch:
    """Follows one client's requests: vetoes long Retry-After waits, announces every retry."""

    def __init__(self, max_retries: int, notify: Notice) -> None:
        self.max_retries = max_retries
        self.notify = notify
        self._local = threading.local()

    def event_hooks(self) -> EventHooks:
        """The httpx event hooks to build the SDK's HTTP client with."""
        return {"request": [self._on_request], "response": [self._on_response]}

    @contextmanager
    def announcing(self) -> Iterator[None]:
        """Inside the block, each retry the SDK makes on this thread is announced by `notify`."""
        _SDK_LOG.install()
        self._local.retries = 0
        _SDK_LOG.listen(self._on_retry)
        try:
            yield
        finally:
            _SDK_LOG.listen(None)

    @property
    def last_retries(self) -> int:
        """How many times the SDK retried the last request made on this thread."""
        return getattr(self._local, "retries", 0)

    def _on_request(self, request: Any) -> None:
        self._local.status = None

    def _on_response(self, response: Any) -> None:
        self._local.status = response.status_code
        wait = retry_after(response.headers)
        if response.status_code >= 400 and wait is not None and wait > MAX_RETRY_AFTER:
            response.headers["x-should-retry"] = "false"

    def _on_retry(self, delay: float) -> None:
        local = self._local
        local.retries = getattr(local, "retries", 0) + 1
        reason = _reason(getattr(local, "status", None))
        self.notify(
            f"{reason}; retrying in {_seconds_text(delay)} s "
            f"({local.retries} of {self.max_retries})"
        )


class _SdkLog(logging.Handler):
    """Hands the SDK's "Retrying request ... in N seconds" log lines to this thread's listener."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._local = threading.local()
        self._installed = False
        self._install_lock = threading.Lock()

    def install(self) -> None:
        """Listen to the SDK's logger (once); it logs retries at INFO."""
        with self._install_lock:
            if self._installed:
                return
            logger = logging.getLogger(SDK_LOGGER)
            logger.addHandler(self)
            if not logger.isEnabledFor(logging.INFO):
                logger.setLevel(logging.INFO)
            self._installed = True

    def listen(self, listener: Callable[[float], None] | None) -> None:
        """Who hears about retries on this thread (None: nobody)."""
        self._local.listener = listener

    def emit(self, record: logging.LogRecord) -> None:
        """Pass the delay of a retry on; a failing listener never breaks the request."""
        listener = getattr(self._local, "listener", None)
        if listener is None:
            return
        match = _RETRY_LINE.search(record.getMessage())
        if match is None:
            return
        try:
            listener(float(match.group(1)))
        except Exception:  # a notice is not worth a failed request
            return


_SDK_LOG = _SdkLog()
