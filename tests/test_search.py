"""Session search: the FTS5 index beside the sessions, `/search`, `chatrepl sessions search`."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from chatrepl.backends.scripted import ScriptedBackend
from chatrepl.cli.typer_app import app
from chatrepl.config import Settings
from chatrepl.conversation import search_index
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message
from chatrepl.conversation.search_index import Excerpt, SearchIndex, excerpt, fts_query
from chatrepl.conversation.store import SessionStore
from chatrepl.errors import CommandError, SessionError
from chatrepl.repl import commands
from chatrepl.repl.state import ReplState
from chatrepl.ui import views
from tests.harness import lines, run_repl


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    store = SessionStore(tmp_path / "sessions", index=SearchIndex(tmp_path / "search.sqlite3"))
    yield store
    store.close()


def session(name: str, *texts: str) -> Conversation:
    """A conversation whose messages alternate user / assistant."""
    roles = ("user", "assistant")
    messages = [Message(roles[i % 2], text) for i, text in enumerate(texts)]  # type: ignore[arg-type]
    return Conversation(name=name, chat_model="m", messages=messages)


def found(store: SessionStore, text: str) -> list[str]:
    return [hit.session for hit in store.search(text)]


def index_rows(path: Path) -> list[tuple[int, str]]:
    """(rowid, text) of every indexed message, read with a connection of the test's own."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT rowid, content FROM texts ORDER BY rowid").fetchall()


def test_finds_words_in_any_session_best_matches_first(store: SessionStore) -> None:
    store.save(session("once", "Tell me about decorators.", "They wrap functions."))
    store.save(
        session(
            "often",
            "Python decorators, decorators everywhere",
            "Decorators: a decorator is called with the function.",
        )
    )
    store.save(session("never", "What is a monad?", "A monoid in the category of endofunctors."))
    hits = store.search("decorators")
    assert [hit.session for hit in hits] == ["often", "once"]
    assert hits[0].matches == 2 and hits[1].matches == 1
    assert hits[1].role == "user"
    assert found(store, "category endofunctors") == ["never"]  # every word, in one message
    assert found(store, "monad endofunctors") == []  # not in the same message


def test_the_matching_line_is_shown_with_the_matches_marked(store: SessionStore) -> None:
    reply = "First line says nothing.\n  Use functools.wraps to keep the name.\nLast line."
    store.save(session("wraps", "how do I keep a function's name?", reply))
    (hit,) = store.search("functools keep")
    assert hit.line.text == "Use functools.wraps to keep the name."
    assert [hit.line.text[a:b] for a, b in hit.line.marks] == ["functools", "keep"]
    assert hit.date[:4].isdigit() and len(hit.date) == 16  # local YYYY-MM-DD HH:MM


def test_phrases_word_beginnings_and_accents(store: SessionStore) -> None:
    store.save(session("s", "keep the name", "the name keep", "un café crème"))
    (hit,) = store.search('"keep the name"')
    assert hit.matches == 1
    assert found(store, "kee*") == ["s"]
    assert found(store, "cafe creme") == ["s"]
    assert found(store, "ke") == []  # whole words unless * says otherwise


@pytest.mark.parametrize(
    "typed",
    [
        '"',
        '"unbalanced phrase',
        "-",
        "-negated",
        "*",
        "**prefix*",
        "NEAR(a b)",
        "a NEAR b",
        "(",
        "((x",
        "x)",
        "AND",
        "a OR b NOT c",
        "col:value",
        "^start",
        "+plus",
        "{a b}: c",
        'say ""hi""',
        "\0nul",
        "'single'",
    ],
)
def test_fts5_syntax_typed_by_a_person_never_raises(store: SessionStore, typed: str) -> None:
    store.save(session("syntax", "NEAR AND OR NOT a b c x hi value start plus negated prefix"))
    try:
        store.search(typed)
    except SessionError as error:
        assert "nothing to search for" in str(error)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \"*-():^+{}NEARORTx\0\\'.,"), max_size=30))
def test_any_query_is_words_and_never_fts5_syntax(typed: str) -> None:
    query = fts_query(typed)
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(content)")
        db.execute("INSERT INTO t VALUES ('a b NEAR OR x')")
        if query:
            db.execute("SELECT * FROM t WHERE t MATCH ?", (query,)).fetchall()


def test_a_save_indexes_only_the_new_or_changed_messages(store: SessionStore) -> None:
    chat = session("turns", "first question", "first answer")
    store.save(chat)
    before = index_rows(store.index.path)
    chat.add(Message("user", "second question about kafka"))
    chat.add(Message("assistant", "second answer"))
    store.save(chat)
    after = index_rows(store.index.path)
    assert after[:2] == before  # the old messages were left alone, same rows
    assert [text for _, text in after[2:]] == ["second question about kafka", "second answer"]
    chat.messages[-1].content += " (continued: zookeeper)"  # /continue: same id, new text
    store.save(chat)
    assert found(store, "zookeeper") == ["turns"]
    assert len(index_rows(store.index.path)) == 4
    with sqlite3.connect(store.index.path) as db:
        assert search_index.refresh(db, store.root) == 0  # nothing was stale after the saves


def test_changes_made_elsewhere_are_found_at_the_next_search(store: SessionStore) -> None:
    store.save(session("mine", "alpha"))
    other = SessionStore(store.root)  # an older chatrepl, or no index: files only
    other.save(session("theirs", "beta gamma"))
    assert found(store, "beta") == ["theirs"]
    path = store.root / "theirs.json"
    document = json.loads(path.read_text())
    document["messages"][0]["content"] = "delta"
    path.write_text(json.dumps(document))  # edited by hand
    assert found(store, "beta") == []
    assert found(store, "delta") == ["theirs"]
    path.unlink()
    assert found(store, "delta") == []


def test_delete_and_rename_keep_the_index_right(store: SessionStore) -> None:
    store.save(session("old", "unique-word here"))
    store.rename("old", "new")
    with sqlite3.connect(store.index.path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sessions")] == ["new"]
    assert found(store, "unique") == ["new"]
    store.delete("new")
    assert index_rows(store.index.path) == []


def test_missing_corrupt_or_foreign_indexes_are_rebuilt(store: SessionStore) -> None:
    store.save(session("kept", "the answer is 42"))
    path = store.index.path
    store.close()
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert found(store, "answer") == ["kept"]  # missing: built
    store.close()
    path.write_bytes(b"this is not a database" * 100)
    assert found(store, "answer") == ["kept"]  # corrupt: rebuilt, no error
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    assert found(store, "answer") == ["kept"]  # another format: rebuilt
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == search_index.SCHEMA_VERSION


def test_an_index_broken_while_open_is_rebuilt_and_saves_never_fail(
    store: SessionStore,
) -> None:
    store.save(session("one", "first words"))
    with sqlite3.connect(store.index.path) as db:
        db.execute("DROP TABLE entries")  # broken under our feet
    store.save(session("two", "second words"))  # the save still succeeds
    assert sorted(found(store, "words")) == ["one", "two"]


def test_an_index_that_cannot_be_written_works_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = SessionStore(tmp_path / "sessions", index=SearchIndex(blocker / "search.sqlite3"))
    store.save(session("s", "still searchable"))  # the save is not disturbed
    assert found(store, "searchable") == ["s"]


def test_a_busy_index_never_holds_a_save_up(store: SessionStore) -> None:
    store.save(session("s", "before"))
    blocker = sqlite3.connect(store.index.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another chatrepl writing (a long rebuild)
    try:
        started = time.perf_counter()
        store.save(session("later", "after the lock"))
        assert time.perf_counter() - started < 2
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert found(store, "lock") == ["later"]  # its update was skipped: found stale, read


def test_an_index_another_chatrepl_keeps_busy_is_never_removed(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_index, "SEARCH_WAIT_MS", 100)
    store.save(session("s", "before"))
    SessionStore(store.root).save(session("new", "needs indexing"))  # the search must write
    blocker = sqlite3.connect(store.index.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(SessionError, match="the search index is busy"):
            store.search("indexing")
        assert store.index.path.exists()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert found(store, "indexing") == ["new"]
    assert found(store, "before") == ["s"]  # nothing was lost


def test_unreadable_files_and_unsafe_names_are_left_out(store: SessionStore) -> None:
    store.save(session("good", "needle"))
    store.root.joinpath("broken.json").write_text("{not json")
    store.root.joinpath("newer.json").write_text(
        json.dumps({"version": 99, "messages": [{"role": "user", "content": "needle"}]})
    )
    store.root.joinpath("bad\x1bname.json").write_text(
        json.dumps({"version": 2, "messages": [{"role": "user", "content": "needle"}]})
    )
    assert found(store, "needle") == ["good"]


def test_index_files_are_private(store: SessionStore) -> None:
    old = os.umask(0)
    try:
        store.save(session("private", "words"))
        store.search("words")
    finally:
        os.umask(old)
    for path in store.index.path.parent.glob("search.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_long_line_is_cut_around_its_match() -> None:
    marked = "x" * 300 + " \x02needle\x03 " + "y" * 300
    line = excerpt(marked, width=60)
    assert line.text.startswith("…") and line.text.endswith("…")
    assert len(line.text) == 62
    assert [line.text[a:b] for a, b in line.marks] == ["needle"]
    across = excerpt("a \x02phrase\nacross\x03 lines")  # a phrase match spanning two lines
    assert [across.text[a:b] for a, b in across.marks] == ["phrase"]


def test_matches_are_highlighted_and_made_safe_for_the_terminal() -> None:
    line = Excerpt("say \x1b]52;c;evil\x07 hi", ((0, 3), (17, 19)))
    cell = views._cell(line)
    assert "\x1b" not in cell.plain and "\\x1b" in cell.plain
    styled = [cell.plain[span.start : span.end] for span in cell.spans]
    assert styled == ["say", "hi"]
    console = Console(force_terminal=True, color_system="standard", width=80)
    with console.capture() as captured:
        console.print(views.table(views.SEARCH_HEADERS, [("s", "d", "1", line)]))
    assert "\x1b]52" not in captured.get()


@pytest.fixture
def state(tmp_path: Path) -> ReplState:
    store = SessionStore(tmp_path / "s", index=SearchIndex(tmp_path / "search.sqlite3"))
    return ReplState(Conversation(chat_model="m"), store, Settings(), ScriptedBackend())


def test_search_command_returns_rows_best_first(state: ReplState) -> None:
    state.store.save(session("python-decorators", "what are decorators?", "wrappers"))
    result = commands.dispatch(state, "/search decorators")
    assert "1 session matches 'decorators'" in (result.message or "")
    assert "/load NAME" in (result.message or "")
    assert result.table is not None
    (row,) = result.table.rows
    assert row[0] == "python-decorators" and row[2] == "1"
    assert isinstance(row[3], Excerpt) and row[3].text == "what are decorators?"
    assert commands.dispatch(state, "/search absent").message == "no session matches 'absent'"
    with pytest.raises(CommandError, match="usage: /search"):
        commands.dispatch(state, "/search")
    with pytest.raises(SessionError, match="nothing to search for"):
        commands.dispatch(state, '/search "*"')


def test_search_in_the_repl_then_load(chatrepl_env) -> None:
    run_repl(lines("tell me about zeppelins"))
    result = run_repl(lines("/search zeppelins", "/load tell-me-about-zeppelins"))
    assert "1 session matches 'zeppelins'" in result.output
    assert "tell-me-about-zeppelins" in result.output
    assert "loaded tell-me-about-zeppelins" in result.output
    assert (chatrepl_env.home / "search.sqlite3").exists()


def test_sessions_search_command(chatrepl_env) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ask", "--session", "birds", "what do herons eat?"]).exit_code == 0
    result = runner.invoke(app, ["sessions", "search", "herons"])
    assert result.exit_code == 0, result.output
    name, date, count, line = result.stdout.strip().split("\t")
    assert (name, count) == ("birds", "2")  # the question and the fake server's echo
    assert "herons eat?" in line
    assert date[:4].isdigit()
    missing = runner.invoke(app, ["sessions", "search", "penguins", "-n", "3"])
    assert missing.exit_code == 1 and "no session matches 'penguins'" in missing.stderr
    wrong = runner.invoke(app, ["sessions", "search", "herons", "--limit", "0"])
    assert wrong.exit_code == 1 and "error: --limit must be at least 1" in wrong.stderr
    syntax = runner.invoke(app, ["sessions", "search", "NEAR(", '"'])
    assert syntax.exit_code == 1 and "Traceback" not in syntax.output
