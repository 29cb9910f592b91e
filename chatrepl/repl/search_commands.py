"""The handler of /search: every saved session's messages, searched, best matches first."""

from __future__ import annotations

from chatrepl.errors import CommandError
from chatrepl.repl.results import Result, Table
from chatrepl.repl.state import ReplState
from chatrepl.ui.safe_text import one_line
from chatrepl.ui.views import SEARCH_HEADERS, search_row

SEARCH_USAGE = 'usage: /search WORDS (all must occur; "a phrase", word* for word beginnings)'


def search_command(state: ReplState, arg: str) -> Result:
    """`/search TEXT`: the sessions whose messages match, best first, one row each."""
    if not arg:
        raise CommandError(SEARCH_USAGE)
    hits = state.store.search(arg)
    if not hits:
        return Result(f"no session matches {one_line(arg)!r}")
    count = f"{len(hits)} sessions match" if len(hits) > 1 else "1 session matches"
    return Result(
        f"{count} {one_line(arg)!r}, best first; /load NAME opens one",
        table=Table(SEARCH_HEADERS, [search_row(hit) for hit in hits]),
    )
