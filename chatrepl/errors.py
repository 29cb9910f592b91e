"""Domain errors, each a one-line message a user can act on, and the one boundary that reports
them (and unexpected exceptions) as that line."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

# Values never shown in a message (the API keys in use): a server may echo a key in its error.
_HIDDEN: set[str] = set()
_SHORTEST_HIDDEN = 8  # shorter values (placeholders such as "none") would garble messages
_SHOWN_ENDS = 24  # keys at least this long keep their first 3 and last 4 characters when masked


def hide(secret: str | None) -> None:
    """Mask this value (an API key) wherever it would appear in an error message."""
    if secret and len(secret) >= _SHORTEST_HIDDEN:
        _HIDDEN.add(secret)


def masked(text: str) -> str:
    """text with every hidden value masked: sk-…WXYZ, or [hidden] for a short one."""
    for secret in _HIDDEN:
        if secret in text:
            shown = f"{secret[:3]}…{secret[-4:]}" if len(secret) >= _SHOWN_ENDS else "[hidden]"
            text = text.replace(secret, shown)
    return text


class ChatReplError(Exception):
    """Base of every error chatrepl reports to the user as one line (hidden values masked)."""

    def __str__(self) -> str:
        return masked(super().__str__())


class ConfigError(ChatReplError):
    """The configuration (flags, environment, config file) is unusable."""


class SessionError(ChatReplError):
    """A session cannot be read, written or named as asked."""


class BackendError(ChatReplError):
    """The model backend failed: HTTP error, connection refused, bad model, context too long."""


class CommandError(ChatReplError):
    """A slash-command was used wrongly."""


def describe_unexpected(failure: BaseException) -> str:
    """One line for an exception that is a bug rather than a user's mistake."""
    return masked(f"unexpected {type(failure).__name__}: {failure} (--debug shows the traceback)")


class ErrorBoundary:
    """Inside it, a ChatReplError or a bug becomes one reported line instead of a traceback.

    `report` gets the line without a prefix; `failed` tells afterwards whether one was reported.
    Under `debug` a bug's traceback is shown (re-raised). Ctrl-C passes through: what it means
    depends on where it lands.
    """

    def __init__(self, report: Callable[[str], None], debug: bool = False) -> None:
        self.report = report
        self.debug = debug
        self.failed = False

    def __enter__(self) -> ErrorBoundary:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, ChatReplError):
            self.report(str(exc))
        elif isinstance(exc, Exception) and not self.debug:
            self.report(describe_unexpected(exc))
        else:
            return False
        self.failed = True
        return True
