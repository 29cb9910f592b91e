"""The generation parameters a user can set (`/set`, the config, `ask` options), declared once:
each one's type, its valid range and what it does. Every value goes through `parse`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    """One settable parameter."""

    name: str
    kind: type  # int, float, or list (of strings)
    help: str
    low: float | None = None
    high: float | None = None


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("temperature", float, "randomness: 0 (focused) to 2 (wild)", 0, 2),
    Parameter("top_p", float, "nucleus sampling: the probability mass kept, 0 to 1", 0, 1),
    Parameter("max_tokens", int, "the longest reply, in tokens", 1, None),
    Parameter("seed", int, "a seed for repeatable sampling (where the server supports it)"),
    Parameter("stop", list, "up to 4 strings that end the reply (`/set stop END ###`)"),
    Parameter("presence_penalty", float, "-2 to 2: above 0 favours new topics", -2, 2),
    Parameter("frequency_penalty", float, "-2 to 2: above 0 discourages repetition", -2, 2),
)
BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}
MAX_STOP = 4


def parse(name: str, value: Any) -> Any:
    """`value` (text or a config value) as the parameter's type; ValueError says why not."""
    parameter = BY_NAME.get(name)
    if parameter is None:
        raise ValueError(f"unknown parameter {name!r}: use one of {', '.join(BY_NAME)}")
    if parameter.kind is list:
        return _stop_list(value)
    number = _number(parameter, value)
    _check_range(parameter, number)
    return number


def shown(value: Any) -> str:
    """A parameter's value as `/set` lists it."""
    if value is None:
        return "(default)"
    if isinstance(value, tuple | list):
        return " ".join(repr(item) for item in value)
    return str(value)


def _number(parameter: Parameter, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{parameter.name} must be a number, not {value!r}")
    try:
        number = parameter.kind(value)
    except (TypeError, ValueError):
        kind = "a whole number" if parameter.kind is int else "a number"
        raise ValueError(f"{parameter.name} must be {kind}, not {value!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{parameter.name} must be a finite number")
    return number


def _check_range(parameter: Parameter, number: float) -> None:
    low, high = parameter.low, parameter.high
    if (low is not None and number < low) or (high is not None and number > high):
        span = f"from {low:g}" + (f" to {high:g}" if high is not None else " up")
        raise ValueError(f"{parameter.name} must be {span}, not {number:g}")


def _stop_list(value: Any) -> tuple[str, ...]:
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items):
        raise ValueError("stop must be up to 4 strings")
    if len(items) > MAX_STOP:
        raise ValueError(f"stop takes at most {MAX_STOP} strings, not {len(items)}")
    return tuple(items)
