"""Links show their targets when the text differs (OSC 8 alone hides them in tmux)."""

from __future__ import annotations

import io

from rich.console import Console

from chatrepl.ui.stream_render import MarkdownStreamRenderer
from chatrepl.ui.views import markdown

TEXT = (
    "Read [the docs](https://example.com/docs), <https://x.org> and [https://a.b](https://a.b).\n"
)


def test_the_target_follows_a_link_whose_text_differs() -> None:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(markdown(TEXT))
    shown = out.getvalue()
    assert "the docs (https://example.com/docs)" in shown
    assert "https://x.org (" not in shown and "https://a.b (" not in shown  # no repetition


def test_the_streaming_renderer_shows_targets_too() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with MarkdownStreamRenderer(console) as renderer:
        for piece in (TEXT[:20], TEXT[20:50], TEXT[50:]):
            renderer.feed(piece)
    assert "the docs (https://example.com/docs)" in out.getvalue()
