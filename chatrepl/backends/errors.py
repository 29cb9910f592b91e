"""One clear line for every way an OpenAI-compatible API call can fail."""

from __future__ import annotations

from typing import Any

from chatrepl.backends.retries import MAX_RETRY_AFTER, clock_after, describe_wait, retry_after

_HINTS = {
    401: "authentication failed: check OPENAI_API_KEY",
    403: "permission denied: the key cannot use this model or endpoint",
    404: "not found: check the model name (/models lists what the server offers)",
    408: "the server timed out",
    413: "the request is too large",
    429: "rate limited or out of quota: wait a moment, then press Enter to resend",
}
_CONTEXT_CODES = ("context_length_exceeded", "string_above_max_length")
# Transport errors (by class name, the same in httpx and httpx2) that mean the connection was
# made and then lost, rather than never made.
_LOST = ("ReadError", "WriteError", "RemoteProtocolError", "LocalProtocolError")


def describe_api_error(
    error: Exception,
    endpoint: str,
    *,
    connect_timeout: float = 10.0,
    timeout: float = 120.0,
    mid_reply: bool = False,
) -> str:
    """A one-line, actionable description of an SDK or transport error.

    `mid_reply`: the server had begun to answer (a streamed reply's headers had arrived).
    """
    import openai

    timed_out = _timeout_kind(error)
    if timed_out:
        return describe_timeout(timed_out, endpoint, connect_timeout, timeout)
    if isinstance(error, openai.APIConnectionError) or not isinstance(error, openai.APIError):
        return _describe_connection(error, endpoint, mid_reply)
    if isinstance(error, openai.APIStatusError):
        detail = first_line(error_detail(error.body) or error.message)
        return _describe_status(error.status_code, detail, retry_after(error.response.headers))
    return f"the server sent an error: {error_detail(error.body) or error.message}"


def describe_timeout(kind: str, endpoint: str, connect_timeout: float, timeout: float) -> str:
    """What a ConnectTimeout, WriteTimeout or ReadTimeout (the others) means to the user."""
    if kind == "ConnectTimeout":
        return (
            f"cannot connect to {endpoint} within {connect_timeout:g} s: "
            "is the server running and the URL right?"
        )
    if kind == "WriteTimeout":
        return f"could not send the request to {endpoint} within {timeout:g} s"
    return f"no data from the server for {timeout:g} s"


def _timeout_kind(error: BaseException) -> str | None:
    """The transport timeout's class name, found on the error or on its cause; else None."""
    for candidate in (error, error.__cause__):
        name = type(candidate).__name__
        if candidate is not None and name.endswith("Timeout") and name != "Timeout":
            return name
    import openai

    return "ReadTimeout" if isinstance(error, openai.APITimeoutError) else None


def _describe_connection(error: Exception, endpoint: str, mid_reply: bool) -> str:
    cause = error.__cause__ if error.__cause__ is not None else error
    lost = type(cause).__name__ in _LOST or type(cause).__module__.startswith("anyio")
    if mid_reply:
        return f"the connection to {endpoint} broke off mid-reply"
    if lost:
        return f"{endpoint} closed the connection without answering"
    return f"cannot connect to {endpoint}: is the server running and the URL right?"


def first_line(text: str) -> str:
    """Servers such as llama.cpp's put tracebacks in error messages: keep the first line."""
    return text.strip().splitlines()[0] if text.strip() else text


def _describe_status(status: int, detail: str, wait: float | None = None) -> str:
    if status == 400 and _mentions_context(detail):
        return f"the conversation is too long for the model's context window: {detail}"
    if wait is not None and wait > MAX_RETRY_AFTER:
        return f"{_refusal(status)} ({status}): {detail}; {_later(wait)}"
    if status >= 500:
        hint = "the server failed; try again in a moment"
    else:
        hint = _HINTS.get(status, "the server refused the request")
    return f"{hint} ({status}): {detail}"


def _refusal(status: int) -> str:
    if status == 429:
        return "rate limited or out of quota"
    return "the server failed" if status >= 500 else "the server refused the request"


def _later(wait: float) -> str:
    """A Retry-After too long to wait for: when to come back."""
    return f"it asks to wait {describe_wait(wait)}: try again after {clock_after(wait)}"


def _mentions_context(detail: str) -> bool:
    lowered = detail.lower()
    return any(code in lowered for code in _CONTEXT_CODES) or "context length" in lowered


def error_detail(body: Any) -> str:
    """The message inside an error body: OpenAI's {"error": {...}} or FastAPI's {"detail": ...}."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail")
            code = inner.get("code")
            if message:
                return f"{message} [{code}]" if code and isinstance(code, str) else str(message)
        elif isinstance(inner, str):
            return inner
        detail = body.get("detail")
        if detail:
            return detail if isinstance(detail, str) else _first_detail(detail)
    if isinstance(body, str):
        return body
    return ""


def _first_detail(detail: Any) -> str:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", detail[0]))
    return str(detail)


def is_transport_error(error: Exception) -> bool:
    """Whether an exception comes from the HTTP layer under the SDK (e.g. a dropped stream)."""
    return type(error).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
