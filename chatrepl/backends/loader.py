"""Slow set-up (an import, a client, a model) done once in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from chatrepl import collection

T = TypeVar("T")


class BackgroundLoad(Generic[T]):
    """Runs `load` once in a daemon thread; `result()` waits for it and re-raises its error."""

    def __init__(self, name: str, load: Callable[[], T]) -> None:
        self._name = name
        self._load = load
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin loading, unless already begun."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def result(self) -> T:
        """The loaded value, waiting for it; the load's exception is raised here."""
        self.start()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def _run(self) -> None:
        try:
            self._value = self._load()
        except BaseException as error:  # reported by result(), in the thread that needs it
            self._error = error
        finally:
            collection.startup_done()  # the slow imports are over
