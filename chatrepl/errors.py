"""Domain errors: each carries a one-line message a user can act on."""


class ChatReplError(Exception):
    """Base of every error chatrepl reports to the user as one line."""


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
    return f"unexpected {type(failure).__name__}: {failure} (--debug shows the traceback)"
