"""Links show where they go: `[text](url)` renders as the text (an OSC 8 hyperlink where the
terminal supports it) followed by ` (url)` whenever the text is not the URL itself. Terminals
and multiplexers that ignore OSC 8 (tmux by default) would otherwise hide the URL entirely, and
a link whose text lies about its target would look like the target."""

from __future__ import annotations

from typing import Any


def show_link_targets(tokens: list[Any]) -> list[Any]:
    """markdown-it tokens with a ` (url)` text token after each link whose text differs."""
    for token in tokens:
        if token.children:
            token.children = _with_targets(token.children)
    return tokens


def _with_targets(children: list[Any]) -> list[Any]:
    from markdown_it.token import Token

    result: list[Any] = []
    href, text = "", []
    for child in children:
        result.append(child)
        if child.type == "link_open":
            href, text = str(child.attrs.get("href", "")), []
        elif child.type in ("text", "code_inline"):
            text.append(child.content)
        elif child.type == "link_close" and href and _differs("".join(text), href):
            result.append(Token("text", "", 0, content=f" ({href})"))
    return result


def _differs(text: str, href: str) -> bool:
    plain = href.removeprefix("mailto:")
    return text.strip() not in (href, plain)
