"""Functions the tests offer the model as tools."""

from typing import Literal


def add(a: int, b: int = 2) -> int:
    """Add two integers.

    Longer explanation that is not part of the description.
    """
    return a + b


def greet(
    name: str, style: Literal["formal", "casual"] = "casual", tags: list[str] | None = None
) -> str:
    """Greet someone by name."""
    return (
        f"{'Good day' if style == 'formal' else 'Hi'}, {name}{' ' + ','.join(tags) if tags else ''}"
    )


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def big(size: int) -> str:
    """Return a long text."""
    return "x" * size


def undocumented(x: int) -> int:
    return x


def _private(x: int) -> int:
    """Not a tool."""
    return x
