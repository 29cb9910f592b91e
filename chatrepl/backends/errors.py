"""One clear line for every way an OpenAI-compatible API call can fail."""

from __future__ import annotations

from typing import Any

_HINTS = {
    401: "authentication failed: check OPENAI_API_KEY",
    403: "permission denied: the key cannot use this model or endpoint",
    404: "not found: check the model name (/models lists what the server offers)",
    408: "the server timed out",
    413: "the request is too large",
    429: "rate limited or out of quota: wait a moment, then press Enter to resend",
}
_CONTEXT_CODES = ("context_length_exceeded", "string_above_max_length")


def describe_api_error(error: Exception, endpoint: str) -> str:
    """A one-line, actionable description of an SDK or transport error."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return f"the request to {endpoint} timed out"
    if isinstance(error, openai.APIConnectionError):
        return f"cannot connect to {endpoint}: is the server running and the URL right?"
    if isinstance(error, openai.APIStatusError):
        detail = error_detail(error.body) or error.message
        return _describe_status(error.status_code, first_line(detail))
    if isinstance(error, openai.APIError):
        return f"the server sent an error: {error_detail(error.body) or error.message}"
    return f"the connection to {endpoint} broke off mid-reply ({type(error).__name__})"


def first_line(text: str) -> str:
    """Servers such as llama.cpp's put tracebacks in error messages: keep the first line."""
    return text.strip().splitlines()[0] if text.strip() else text


def _describe_status(status: int, detail: str) -> str:
    if status == 400 and _mentions_context(detail):
        return f"the conversation is too long for the model's context window: {detail}"
    if status >= 500:
        hint = "the server failed; try again in a moment"
    else:
        hint = _HINTS.get(status, "the server refused the request")
    return f"{hint} ({status}): {detail}"


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
