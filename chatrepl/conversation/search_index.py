"""Full-text search over every session's messages: an SQLite FTS5 index beside the session files.

The JSON files stay the source of truth; the index (`search.sqlite3` in the data directory, 0600)
is derived from them. Each save puts in it only the messages of that session that changed (new
ids, or new text under an old id). Before each search the index is brought up to date: a session
file whose size, modification time or inode differs from what the index recorded is read again,
one that was removed is dropped, so files changed by an older chatrepl or by hand are found too.
A missing index is built, one that is corrupt or of another format is rebuilt, one that cannot be
written (a read-only directory) is built in memory. None of this is ever an error a user sees: an
update that fails leaves the session's record stale, and the next search reads it again.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import ROLES
from chatrepl.conversation.session_format import READABLE_VERSIONS
from chatrepl.errors import SessionError
from chatrepl.files import private_file

if TYPE_CHECKING:
    import sqlite3

T = TypeVar("T")

SCHEMA_VERSION = 1
MAX_INDEXED_CHARS = 1_000_000  # of each message: a huge paste or tool result is indexed in part
SAVE_WAIT_MS = 200  # a save waits this long for another process's index write, then skips
SEARCH_WAIT_MS = 10_000  # a search waits this long (another chatrepl may be rebuilding the index)
REFRESH_BATCH = 200  # sessions read again per transaction, so that others' saves are not held up
LINE_CHARS = 100  # characters of the matching line shown
DEFAULT_LIMIT = 20
MARK_START, MARK_END = "\x02", "\x03"  # around each match; taken out of the indexed text
_NOT_INDEXED = ("\0", MARK_START, MARK_END)
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED: another process is writing, nothing is broken
_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_SIDE_FILES = ("-wal", "-shm", "-journal")
_SHIFT = 32  # a message's rowid: its session's id << 32, plus its number in the session
SUFFIX = ".json"  # of a session file

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, updated TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, inode INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS entries (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL, digest BLOB NOT NULL, role TEXT NOT NULL,
        time TEXT NOT NULL)""",
    "CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5 ("
    "content, tokenize = 'unicode61 remove_diacritics 2')",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
# Each session's best message (rank is bm25: lower is better) and how many of its messages
# match; the session is the high bits of the rowid, so no other table is read for every match.
_BEST_PER_SESSION = f"""
SELECT id >> {_SHIFT} AS session, id, min(score) AS best, count(*) AS matches
FROM (SELECT rowid AS id, rank AS score FROM texts WHERE texts MATCH ?)
GROUP BY session ORDER BY best LIMIT ?
"""
_HIGHLIGHT = (
    "SELECT highlight(texts, 0, char(2), char(3)) FROM texts WHERE texts MATCH ? AND rowid = ?"
)

Stamp = tuple[int, int, int]  # a session file's mtime_ns, size and inode
Entry = tuple[bytes, str, str, str]  # an indexed message's digest, role, time and text


@dataclass(frozen=True)
class Excerpt:
    """A line of text and the spans of it that matched (start, end), to show highlighted."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Hit:
    """A session that matches: its best message's date, role and matching line."""

    session: str
    date: str
    role: str
    line: Excerpt
    matches: int  # how many of the session's messages match


def fts_query(text: str) -> str:
    """An FTS5 query for what a person typed, never FTS5 syntax: every word and "quoted phrase"
    must occur (a trailing * also matches longer words); operators and punctuation are text."""
    parts = []
    for match in _TERM.finditer(text.replace("\0", " ")):
        phrase, word = match.group(1), match.group(2)
        body = phrase if phrase is not None else word.rstrip("*")
        prefix = phrase is None and word.endswith("*")
        if any(char.isalnum() for char in body):
            parts.append('"' + body.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(parts)


def excerpt(highlighted: str, width: int = LINE_CHARS) -> Excerpt:
    """The first line of a highlighted text that holds a match, cut to `width` around it."""
    lines = highlighted.split("\n")
    line = next((line for line in lines if MARK_START in line or MARK_END in line), lines[0])
    text, marks = _unmarked(line.replace("\t", " "))
    text, marks = _stripped(text, marks)
    if len(text) <= width:
        return Excerpt(text, marks)
    first = marks[0][0] if marks else 0
    start = max(0, min(first - width // 3, len(text) - width))
    end = start + width
    head, tail = ("…" if start else ""), ("…" if end < len(text) else "")
    shift = len(head) - start
    kept = tuple(
        (max(a, start) + shift, min(b, end) + shift) for a, b in marks if a < end and b > start
    )
    return Excerpt(head + text[start:end] + tail, kept)


def _unmarked(line: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A line without its markers, and the spans they enclosed (a match may cross lines)."""
    pieces = re.split(f"([{MARK_START}{MARK_END}])", line)
    inside = next((piece == MARK_END for piece in pieces if piece in (MARK_START, MARK_END)), False)
    text, marks, opened = "", [], 0
    for piece in pieces:
        if piece in (MARK_START, MARK_END):
            if inside and len(text) > opened:
                marks.append((opened, len(text)))
            inside, opened = piece == MARK_START, len(text)
        else:
            text += piece
    if inside and len(text) > opened:
        marks.append((opened, len(text)))
    return text, tuple(marks)


def _stripped(
    text: str, marks: tuple[tuple[int, int], ...]
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The text without surrounding white space, its marks moved with it."""
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    return text, tuple(
        (max(0, a - lead), min(len(text), b - lead)) for a, b in marks if b - lead > 0
    )


def local_date(iso_time: str) -> str:
    """An ISO time (as saved, UTC) as local `YYYY-MM-DD HH:MM`; odd text is shown as it is."""
    try:
        return datetime.fromisoformat(iso_time).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return iso_time[:16]


def indexed_text(content: str) -> tuple[str, bytes]:
    """What is indexed of a message (its beginning, as valid UTF-8, without the characters that
    mark matches) and its digest."""
    import hashlib  # here: not at start-up (its OpenSSL takes milliseconds to load)

    text = content[:MAX_INDEXED_CHARS]
    for char in _NOT_INDEXED:
        if char in text:
            text = text.replace(char, " ")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        data = text.encode("utf-8", "replace")
        text = data.decode("utf-8")
    return text, hashlib.blake2b(data, digest_size=8).digest()


# What is indexed of one message: its key (id), role, time and text.
Saved = tuple[str, str, str, str]


def conversation_messages(conversation: Conversation) -> list[Saved]:
    """The messages of a conversation worth finding: all with text but summaries (the messages
    a summary stands for are kept, and found themselves)."""
    return [
        (message.id, message.role, message.time, message.content)
        for message in conversation.messages
        if message.content and not message.is_summary
    ]


def document_messages(document: Any) -> list[Saved]:
    """The same, read straight from a session file's JSON (faster than building messages: a
    rebuild reads every file); what is not a readable session gives nothing."""
    if not isinstance(document, dict) or document.get("version") not in READABLE_VERSIONS:
        return []
    items = document.get("messages")
    found = []
    for position, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, dict) or item.get("summary_of") is not None:
            continue
        content, role = item.get("content"), item.get("role")
        if isinstance(content, str) and content and role in ROLES:
            key, time = item.get("id"), item.get("time")
            key = key if isinstance(key, str) and key else f"#{position}"
            found.append((key, role, time if isinstance(time, str) else "", content))
    return found


def read_messages(path: Path) -> tuple[str, list[Saved]]:
    """A session file's `updated` and messages; a file that cannot be read has none."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return "", []
    updated = document.get("updated") if isinstance(document, dict) else None
    return (updated if isinstance(updated, str) else ""), document_messages(document)


def scan(root: Path) -> dict[str, Stamp]:
    """Every session file's stamp by name (its mtime, size and inode: an atomic write makes a
    new inode each time)."""
    stamps: dict[str, Stamp] = {}
    try:
        entries = os.scandir(root)
    except OSError:
        return stamps
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(SUFFIX) or name.startswith("."):
                continue
            try:
                info = entry.stat()
            except OSError:  # removed meanwhile
                continue
            stamps[name[: -len(SUFFIX)]] = (info.st_mtime_ns, info.st_size, info.st_ino)
    return stamps


def stamp_of(path: Path) -> Stamp | None:
    """A session file's stamp; None when it is gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class SearchIndex:
    """The search index in one SQLite file; one connection, opened when first needed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None  # of the file the connection has open
        self._lock = threading.Lock()

    def saved(self, name: str, conversation: Conversation, file: Path) -> None:
        """Put a session just written to `file` in the index (only what changed); never raises."""
        stamp = stamp_of(file)
        if stamp is not None:
            messages = conversation_messages(conversation)
            self._quietly(lambda db: _put(db, name, conversation.updated, messages, stamp))

    def removed(self, name: str) -> None:
        """Take a removed session out of the index; never raises."""
        self._quietly(lambda db: _drop(db, name))

    def search(
        self,
        root: Path,
        text: str,
        limit: int = DEFAULT_LIMIT,
        openable: Callable[[str], bool] = lambda name: True,
    ) -> list[Hit]:
        """The sessions whose messages match `text`, best first, once the index is up to date
        with the session files in `root` (those whose names `openable` refuses left out)."""
        query = fts_query(text)
        if not query:
            raise SessionError(f"nothing to search for in {text!r}: give a word to look for")
        with self._lock:
            return self._recovering(lambda db: _search(db, root, openable, query, limit))

    def close(self) -> None:
        """Close the connection (it is opened again when needed)."""
        with self._lock:
            self._disconnect()

    def _quietly(self, change: Callable[[sqlite3.Connection], None]) -> None:
        """Make one change in a transaction; a busy index is skipped, a broken one removed."""
        import sqlite3

        with self._lock:
            try:
                db = self._connection(SAVE_WAIT_MS)
                with _transaction(db):
                    change(db)
            except (sqlite3.Error, OSError) as error:
                if not _busy(error):
                    self._discard()  # rebuilt, from the session files, by the next search

    def _recovering(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run action; if the index is broken, rebuild it from scratch, at worst in memory."""
        import sqlite3

        for attempt in ("file", "new file", "memory"):
            try:
                return action(self._connection(SEARCH_WAIT_MS, memory=attempt == "memory"))
            except (sqlite3.Error, OSError) as error:
                if attempt == "memory":
                    raise SessionError(f"cannot search the sessions: {error}") from error
                if _busy(error):  # never remove a file another chatrepl is writing
                    raise SessionError(
                        "the search index is busy (another chatrepl is writing it); try again"
                    ) from error
                self._discard()
        raise AssertionError("unreachable: the in-memory attempt returns or raises")

    def _connection(self, wait_ms: int, memory: bool = False) -> sqlite3.Connection:
        """The open connection (again if its file was replaced), with this wait for locks."""
        if self._db is not None and self._inode is not None and self._inode != _inode(self.path):
            self._disconnect()  # another chatrepl rebuilt the index: use the new file
        if self._db is None:
            self._db, self._inode = _open(self.path, memory)
        self._db.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        return self._db

    def _disconnect(self) -> None:
        db, self._db, self._inode = self._db, None, None
        if db is not None:
            with suppress(Exception):
                db.close()

    def _discard(self) -> None:
        """Close and remove a broken index file (and SQLite's files beside it)."""
        self._disconnect()
        for suffix in ("", *_SIDE_FILES):
            with suppress(OSError):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _busy(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _BUSY_CODES


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _open(path: Path, memory: bool) -> tuple[sqlite3.Connection, int | None]:
    """Connect (creating the file 0600 first) and make sure the schema is this version's."""
    import sqlite3

    if memory:
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        _create(db)
        return db, None
    private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    try:
        db.execute(f"PRAGMA busy_timeout = {SEARCH_WAIT_MS}")
        db.execute("PRAGMA journal_mode = WAL")  # readers and one writer at once
        db.execute("PRAGMA synchronous = NORMAL")  # no fsync per commit: it is derived data
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"search index format {version}, not {SCHEMA_VERSION}")
        if version == 0:
            _create(db)
    except BaseException:
        db.close()
        raise
    return db, _inode(path)


def _create(db: sqlite3.Connection) -> None:
    with _transaction(db):
        for statement in _SCHEMA:
            db.execute(statement)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, taken at once (BEGIN IMMEDIATE), committed or rolled back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(Exception):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _put(
    db: sqlite3.Connection, name: str, updated: str, messages: list[Saved], stamp: Stamp
) -> None:
    """Record a session: its file's stamp, and those of its messages that are new or changed."""
    session = _session_id(db, name, updated, stamp)
    span = (session << _SHIFT, (session + 1) << _SHIFT)  # the rowids of its messages
    have = {
        key: (rowid, digest)
        for rowid, key, digest in db.execute(
            "SELECT id, key, digest FROM entries WHERE id >= ? AND id < ?", span
        )
    }
    wanted = _entries(messages)
    stale = [(rowid,) for key, (rowid, digest) in have.items() if _digest(wanted, key) != digest]
    db.executemany("DELETE FROM texts WHERE rowid = ?", stale)
    db.executemany("DELETE FROM entries WHERE id = ?", stale)
    fresh = [(key, entry) for key, entry in wanted.items() if _digest_of(have, key) != entry[0]]
    if fresh:
        _insert(db, span, fresh)


def _digest(entries: dict[str, Entry], key: str) -> bytes | None:
    entry = entries.get(key)
    return entry[0] if entry else None


def _digest_of(have: dict[str, tuple[int, bytes]], key: str) -> bytes | None:
    found = have.get(key)
    return found[1] if found else None


def _insert(db: sqlite3.Connection, span: tuple[int, int], fresh: list[tuple[str, Entry]]) -> None:
    """Add messages, numbered after the session's last one."""
    last = db.execute("SELECT max(id) FROM entries WHERE id >= ? AND id < ?", span).fetchone()[0]
    first = (last or span[0]) + 1
    numbered = [(first + offset, key, entry) for offset, (key, entry) in enumerate(fresh)]
    db.executemany(
        "INSERT INTO entries (id, key, digest, role, time) VALUES (?, ?, ?, ?, ?)",
        [(rowid, key, digest, role, time) for rowid, key, (digest, role, time, _) in numbered],
    )
    db.executemany(
        "INSERT INTO texts (rowid, content) VALUES (?, ?)",
        [(rowid, entry[3]) for rowid, _, entry in numbered],
    )


def _session_id(db: sqlite3.Connection, name: str, updated: str, stamp: Stamp) -> int:
    row = db.execute("SELECT id FROM sessions WHERE name = ?", (name,)).fetchone()
    if row is None:
        return db.execute(
            "INSERT INTO sessions (name, updated, mtime_ns, size, inode) VALUES (?, ?, ?, ?, ?)",
            (name, updated, *stamp),
        ).lastrowid
    db.execute(
        "UPDATE sessions SET updated = ?, mtime_ns = ?, size = ?, inode = ? WHERE id = ?",
        (updated, *stamp, row[0]),
    )
    return row[0]


def _entries(messages: list[Saved]) -> dict[str, Entry]:
    """Digest, role, time and indexed text by key (a repeated id gets its position added)."""
    entries: dict[str, Entry] = {}
    for position, (key, role, time, content) in enumerate(messages):
        if key in entries:
            key = f"{key}#{position}"
        text, digest = indexed_text(content)
        entries[key] = (digest, role, time, text)
    return entries


def _drop(db: sqlite3.Connection, name: str) -> None:
    """Forget a session and its messages."""
    row = db.execute("SELECT id FROM sessions WHERE name = ?", (name,)).fetchone()
    if row is None:
        return
    low, high = row[0] << _SHIFT, (row[0] + 1) << _SHIFT
    db.execute("DELETE FROM texts WHERE rowid >= ? AND rowid < ?", (low, high))
    db.execute("DELETE FROM entries WHERE id >= ? AND id < ?", (low, high))
    db.execute("DELETE FROM sessions WHERE id = ?", (row[0],))


def refresh(
    db: sqlite3.Connection, root: Path, openable: Callable[[str], bool] = lambda name: True
) -> int:
    """Bring the index up to date with the session files in `root`: read again those whose
    stamp changed, drop those gone. Returns how many sessions were read or dropped."""
    known = {
        name: (mtime, size, inode)
        for name, mtime, size, inode in db.execute(
            "SELECT name, mtime_ns, size, inode FROM sessions"
        )
    }
    on_disk = scan(root)
    gone = [name for name in known if name not in on_disk]
    changed = [
        (name, stamp)
        for name, stamp in on_disk.items()
        if known.get(name) != stamp and (name in known or openable(name))
    ]
    for start in range(0, max(len(gone), len(changed)), REFRESH_BATCH):
        with _transaction(db):
            for name in gone[start : start + REFRESH_BATCH]:
                _drop(db, name)
            for name, stamp in changed[start : start + REFRESH_BATCH]:
                # The stamp was taken before reading: a file changed meanwhile is read again.
                _put(db, name, *read_messages(root / f"{name}{SUFFIX}"), stamp)
    return len(gone) + len(changed)


def _search(
    db: sqlite3.Connection, root: Path, openable: Callable[[str], bool], query: str, limit: int
) -> list[Hit]:
    refresh(db, root, openable)
    hits = []
    for session, rowid, _score, matches in db.execute(_BEST_PER_SESSION, (query, limit)).fetchall():
        name = db.execute("SELECT name FROM sessions WHERE id = ?", (session,)).fetchone()
        role, time = db.execute("SELECT role, time FROM entries WHERE id = ?", (rowid,)).fetchone()
        found = db.execute(_HIGHLIGHT, (query, rowid)).fetchone()
        line = excerpt(found[0]) if found else Excerpt("")
        hits.append(Hit(name[0], local_date(time), role, line, matches))
    return hits
