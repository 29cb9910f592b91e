"""SessionStore: one versioned JSON file per session, written atomically, with safe names, and
locked so that two chatrepl processes never lose each other's turns.

A session is locked (`.NAME.lock` beside it, an flock that dies with its process) while it is
written and, in a REPL's store (`keep_open=True`), for as long as that REPL has it open: another
chatrepl can then neither open it, nor save, rename or delete it. Writers that keep nothing open
(`chatrepl ask --session`) wait briefly for each other and put their turn into the session as it
is on disk at that moment (`save_turn`).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chatrepl import collection
from chatrepl.conversation import session_format
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message, now, shown
from chatrepl.conversation.search_index import DEFAULT_LIMIT, Hit, SearchIndex
from chatrepl.errors import SessionError
from chatrepl.files import (
    BRIEF,
    LASTING,
    TEMP_SUFFIX,
    FileLock,
    Holder,
    LockBusy,
    private_dir,
    reason,
    write_atomically,
)

SUFFIX = ".json"
LOCK_SUFFIX = ".lock"
LOCK_WAIT = 10.0  # seconds to wait for another chatrepl's brief write (an `ask` saving its turn)
_MAX_NAME = 100
# Unicode categories refused in names: controls (newline, ESC), format characters (bidi
# overrides, zero-width), surrogates, line and paragraph separators.
_INVISIBLE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
_SLUG_WORDS = 6
_FORK = "-fork"
# What an `ask` turn sets on the session it saves into, beside its messages.
_TURN_SETTINGS = (
    "mode",
    "chat_model",
    "completion_model",
    "system",
    "suffix",
    "backend",
    "json_mode",
    "params",
)

__all__ = ["SessionBusy", "SessionInfo", "SessionStore", "write_atomically"]


class SessionBusy(SessionError):
    """Another chatrepl has the session open, or kept it locked longer than we waited."""

    def __init__(
        self, name: str, holder: Holder | None, waited: float, action: str | None = None
    ) -> None:
        self.name, self.holder, self.waited = name, holder, waited
        who = f"another chatrepl (pid {holder.pid})" if holder else "another chatrepl"
        if holder is not None and holder.purpose == LASTING:
            where = f"open in {who}"
        else:
            where = f"locked by {who} for more than {waited:g} s"
        if action is None:
            super().__init__(f"session {name!r} is {where}")
        else:
            super().__init__(
                f"cannot {action} session {name!r}: it is {where}; close it there first"
            )

    def refusing(self, action: str) -> SessionBusy:
        """The same, worded as a refusal to `action` the session."""
        return SessionBusy(self.name, self.holder, self.waited, action)


class _Unlockable(SessionError):
    """The lock file cannot be made (a read-only or missing directory, say)."""

    def __init__(self, path: Path, cause: str, action: str = "save session to") -> None:
        super().__init__(f"cannot {action} {path}: {cause}")
        self.path, self.cause = path, cause

    def refusing(self, action: str) -> _Unlockable:
        """The same, worded for another action on the file."""
        return _Unlockable(self.path, self.cause, action)


@dataclass(frozen=True)
class SessionInfo:
    """A line of `sessions list`: read from the file's metadata."""

    name: str
    updated: str
    messages: int
    path: Path
    problem: str | None = None  # why the file could not be read, when it could not

    @property
    def summary(self) -> str:
        """ "N messages", or why the file is unreadable."""
        return f"unreadable: {self.problem}" if self.problem else f"{self.messages} messages"


def check_name(name: str) -> str:
    """Return the name if it is safe as a file name, else raise SessionError."""
    name = name.strip()
    if not name:
        raise SessionError("a session name cannot be empty")
    if "/" in name or "\\" in name or ".." in name or "\0" in name:
        raise SessionError(
            f"invalid session name {shown(name)}: no path separators or '..' allowed"
        )
    if name.startswith(".") or len(name) > _MAX_NAME:
        raise SessionError(
            f"invalid session name {shown(name)}: must not start with '.' or exceed 100"
        )
    hidden = next((char for char in name if unicodedata.category(char) in _INVISIBLE), None)
    if hidden is not None:
        raise SessionError(
            f"invalid session name {shown(name)}: no control or invisible characters "
            f"(U+{ord(hidden):04X})"
        )
    return name


def _openable(name: str) -> bool:
    """Whether check_name accepts the name as it is."""
    try:
        return check_name(name) == name
    except SessionError:
        return False


def slugify(text: str) -> str:
    """A readable file-safe name from the first words of a text."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:_SLUG_WORDS]
    return "-".join(words)[:48].strip("-")


class SessionStore:
    """Sessions saved under one directory, as NAME.json, each locked while it is written.

    `keep_open=True` (a REPL): every session this store loads or saves stays locked until
    `release` or `close`, so no other chatrepl changes it meanwhile.
    """

    def __init__(
        self, root: Path, keep_open: bool = False, index: SearchIndex | None = None
    ) -> None:
        self.root = root
        self.keep_open = keep_open
        self.index = index  # kept up to date with every write and removal, when given
        # Names this process loaded or wrote: only those may be overwritten by save().
        self._owned: set[str] = set()
        # The text last read or written per name: an unchanged session is not rewritten.
        self._on_disk: dict[str, str] = {}
        # Names this process gave to new sessions (their files did not exist before).
        self._named_here: set[str] = set()
        # Names whose files this process created.
        self._created: set[str] = set()
        self._locks: dict[str, FileLock] = {}

    def path(self, name: str) -> Path:
        """The file of a session."""
        return self.root / f"{check_name(name)}{SUFFIX}"

    def lock_path(self, name: str) -> Path:
        """The lock file of a session (hidden, beside it)."""
        return self.root / f".{check_name(name)}{LOCK_SUFFIX}"

    def exists(self, name: str) -> bool:
        """Whether a session of that name is on disk."""
        return self.path(name).exists()

    def save(self, conversation: Conversation) -> Path:
        """Write atomically under the session's lock. Names an unnamed session first."""
        if not conversation.name:
            return self._save_new(conversation)
        name = conversation.name
        text = session_format.dumps(conversation)
        if self._on_disk.get(name) == text and self.exists(name):
            return self.path(name)
        with self._locked(name):
            path = self.path(name)
            if name not in self._owned and path.exists():
                raise SessionError(
                    f"a session named {name!r} already exists ({path}); "
                    "choose another name or load it"
                )
            self._write(name, text, conversation)
        return path

    def save_turn(
        self,
        conversation: Conversation,
        turn: list[Message],
        replacing: Iterable[str] = (),
        wait: float = LOCK_WAIT,
    ) -> None:
        """Put one turn's messages into the named session as it is on disk now, under its lock:
        reload, put the turn where its messages were (ids in `replacing`) or at the end, save.
        Turns that other chatrepl processes saved meanwhile stay. A session this process created
        and that the turn leaves empty (its question taken back) is removed."""
        name = check_name(conversation.name or "")
        with self._locked(name, wait):
            if self.exists(name):
                current = self.load(name)
            else:
                current = dataclasses.replace(conversation, messages=list(conversation.messages))
            merged = _with_turn(current, conversation, turn, set(replacing))
            if not merged.messages and name in self._created:
                self._remove(name)
                return
            self.save(merged)

    def discard_if_unused(self, conversation: Conversation) -> None:
        """Remove the file of a session this process named and that has no message (a first
        turn that failed), and take its name back."""
        name = conversation.name
        if conversation.messages or name not in self._named_here:
            return
        with self._locked(name):
            self._remove(name)
        self.release(name)
        self._named_here.discard(name)
        conversation.name = None

    def load(self, name: str, defer_messages: bool = False) -> Conversation:
        """Read a session; a missing or corrupt file raises SessionError naming the file. A REPL's
        store locks it first: SessionBusy when another chatrepl has it open. defer_messages:
        a file this chatrepl wrote has its messages parsed when first read (SessionError then,
        if they are corrupt), so a resumed REPL's prompt does not wait for them."""
        path = self.path(name)
        if not path.exists():
            raise SessionError(f"no session named {name!r} (see `chatrepl sessions list`)")
        taken = self._take_if_possible(name) if self.keep_open else False
        try:
            conversation, text = read_session_text(path, defer_messages)
        except BaseException:
            if taken:
                self.release(name)
            raise
        conversation.name = path.stem
        self._owned.add(path.stem)
        # What saving it unchanged would write. A file this chatrepl wrote is exactly that (no
        # need to serialize 5,000 messages to know it); a version 1 file stays as it is until
        # the session changes.
        written_here = (
            text.startswith(_CURRENT_HEAD) and f'"name": {json.dumps(path.stem)}' in text[:300]
        )
        self._on_disk[path.stem] = text if written_here else session_format.dumps(conversation)
        return conversation

    def fork(self, name: str) -> Conversation:
        """A copy of a session as it is on disk, saved now as NAME-fork (or NAME-fork-2...)."""
        path = self.path(name)
        if not path.exists():
            raise SessionError(f"no session named {name!r} (see `chatrepl sessions list`)")
        copy = read_session_file(path)
        copy.name = None
        copy.created = copy.updated = now()
        self._save_new(copy, base=name[: _MAX_NAME - len(_FORK) - 4] + _FORK)
        return copy

    def release(self, name: str | None) -> None:
        """Unlock a session this process holds, and remove its lock file."""
        lock = self._locks.pop(name, None) if name else None
        if lock is not None:
            lock.release()

    def close(self) -> None:
        """Unlock every session this store holds (and close the search index)."""
        for name in list(self._locks):
            self.release(name)
        if self.index is not None:
            self.index.close()

    def list(self) -> list[SessionInfo]:
        """Every session, most recently updated first; unreadable files last, with the reason."""
        infos, broken = [], []
        for path in self._files():
            try:
                conversation = read_session_file(path)
            except SessionError as error:
                broken.append(SessionInfo(path.stem, "", 0, path, problem=str(error)))
                continue
            infos.append(
                SessionInfo(path.stem, conversation.updated, len(conversation.messages), path)
            )
        return sorted(infos, key=lambda info: info.updated, reverse=True) + broken

    def names(self) -> list[str]:
        """Session names, without reading the files (for tab completion)."""
        return sorted(path.stem for path in self._files())

    def search(self, text: str, limit: int = DEFAULT_LIMIT) -> list[Hit]:
        """Sessions whose messages match `text`, best first (the index brought up to date first;
        files with names chatrepl does not open are left out)."""
        if self.index is None:
            raise SessionError("searching sessions needs a search index; this store has none")
        return self.index.search(self.root, text, limit, _openable)

    def latest(self) -> str | None:
        """The most recently modified session, by file time."""
        files = self._files()
        return max(files, key=lambda p: p.stat().st_mtime).stem if files else None

    def delete(self, name: str) -> None:
        """Remove a session file; refused while another chatrepl has it open."""
        if not self.path(name).exists():
            raise SessionError(f"no session named {name!r}")
        try:
            with self._locked(name):
                self._remove(name)
        except (SessionBusy, _Unlockable) as refused:
            raise refused.refusing("delete") from None
        self.release(name)

    def rename(self, old: str, new: str) -> None:
        """Rename a session, its file and the name recorded inside it; refused while another
        chatrepl has either name open."""
        check_name(new)
        if not self.path(old).exists():
            raise SessionError(f"no session named {old!r} (see `chatrepl sessions list`)")
        try:
            with self._locked(old), self._locked(new, wait=0):
                self._move(old, new)
        except (SessionBusy, _Unlockable) as refused:
            raise refused.refusing("rename") from None
        self.release(old)

    def copy(self, conversation: Conversation, new: str) -> Path:
        """Save a copy of a conversation as a new session `new`; the conversation keeps its own
        name. Refused when `new` exists or another chatrepl is writing it."""
        check_name(new)
        duplicate = dataclasses.replace(
            conversation, name=new, messages=list(conversation.messages), created=now()
        )
        try:
            taken = self._take(new, wait=0)
        except (SessionBusy, _Unlockable) as refused:
            raise refused.refusing("save a copy as") from None
        try:
            if self.exists(new):
                raise SessionError(f"a session named {new!r} already exists; choose another name")
            self._write(new, session_format.dumps(duplicate), duplicate)
        finally:
            if taken:
                self.release(new)
        for known in (self._owned, self._created, self._named_here):  # not open here: not ours
            known.discard(new)
        self._on_disk.pop(new, None)
        return self.path(new)

    def _move(self, old: str, new: str) -> None:
        conversation = self.load(old)
        if self.exists(new):
            raise SessionError(f"a session named {new!r} already exists")
        conversation.name = new
        self._write(new, session_format.dumps(conversation), conversation)
        self._remove(old)

    def new_name(self, first_text: str, skip: Iterable[str] = (), base: str | None = None) -> str:
        """A readable unused name: a slug of the first message, else the date and time."""
        base = base or slugify(first_text) or datetime.now().strftime("chat-%Y%m%d-%H%M%S")
        skipped = set(skip)
        name, counter = base, 2
        while self.path(name).exists() or name in self._owned or name in skipped:
            name, counter = f"{base}-{counter}", counter + 1
        return name

    def _save_new(self, conversation: Conversation, base: str | None = None) -> Path:
        """Name a new session, lock the name (another chatrepl may be choosing it too), write."""
        taken: set[str] = set()
        while True:
            name = self.new_name(conversation.first_user_text(), taken, base)
            taken.add(name)
            try:
                self._take(name, wait=0)
            except SessionBusy:
                continue
            if self.exists(name):  # written meanwhile by another chatrepl
                self.release(name)
                continue
            break
        conversation.name = name
        self._named_here.add(name)
        try:
            self._write(name, session_format.dumps(conversation), conversation)
        finally:
            if not self.keep_open:
                self.release(name)
        return self.path(name)

    def _write(self, name: str, text: str, conversation: Conversation) -> None:
        """Write a session file (its lock held); a failure is one line naming file and cause."""
        path = self.path(name)
        existed = path.exists()
        try:
            write_atomically(path, text)
        except OSError as error:
            raise SessionError(f"cannot save session to {path}: {reason(error)}") from error
        if not existed:
            self._created.add(name)
        self._owned.add(name)
        self._on_disk[name] = text
        if self.index is not None:
            self.index.saved(name, conversation, path)

    def _remove(self, name: str) -> None:
        """Delete a session file (its lock held) and forget it."""
        path = self.path(name)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise SessionError(f"cannot remove {path}: {reason(error)}") from error
        self._owned.discard(name)
        self._on_disk.pop(name, None)
        self._created.discard(name)
        if self.index is not None:
            self.index.removed(name)

    @contextmanager
    def _locked(self, name: str, wait: float = LOCK_WAIT) -> Iterator[None]:
        """The session locked during the block; a REPL's store keeps a lock it took for a
        block that succeeded."""
        taken = self._take(name, wait)
        try:
            yield
        except BaseException:
            if taken:
                self.release(name)
            raise
        if taken and not self.keep_open:
            self.release(name)

    def _take(self, name: str, wait: float = LOCK_WAIT) -> bool:
        """Lock a session unless this store holds it already (False then)."""
        lock = self._locks.get(name)
        if lock is not None and lock.locked:
            return False
        self.release(name)  # a lock whose file went away (its directory was removed): anew
        lock = FileLock(self.lock_path(name))
        try:
            private_dir(self.root)
            lock.acquire(LASTING if self.keep_open else BRIEF, wait)
        except LockBusy as busy:
            raise SessionBusy(name, busy.holder, wait) from None
        except OSError as error:
            raise _Unlockable(self.path(name), reason(error)) from error
        self._locks[name] = lock
        self._remove_stale_temp_files(name)
        return True

    def _take_if_possible(self, name: str) -> bool:
        """Lock a session to read it; a directory where no lock file can be made (read-only)
        is read unlocked: nothing can be saved there anyway."""
        try:
            return self._take(name)
        except _Unlockable:
            return False

    def _remove_stale_temp_files(self, name: str) -> None:
        """Temp files of a session whose lock we now hold were left by a writer that died."""
        prefix = f".{name}{SUFFIX}."
        pattern = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))
        for path in self.root.glob(glob.escape(prefix) + "*" + TEMP_SUFFIX):
            if pattern.fullmatch(path.name):
                path.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")]


def _with_turn(
    current: Conversation, ours: Conversation, turn: list[Message], replacing: set[str]
) -> Conversation:
    """`current` with `turn` where its messages (or those in `replacing`) were, else at the end,
    and with the settings of `ours`."""
    gone = replacing | {message.id for message in turn}
    messages = current.messages
    where = next((i for i, m in enumerate(messages) if m.id in gone), len(messages))
    kept = [message for message in messages if message.id not in gone]
    current.messages = [*kept[:where], *turn, *kept[where:]]
    for key in _TURN_SETTINGS:
        setattr(current, key, getattr(ours, key))
    current.touch()
    return current


_CURRENT_HEAD = '{\n "format": "chatrepl-session",\n "version": 2,'


def read_session_file(path: Path) -> Conversation:
    """Parse one session file; any problem is one SessionError line naming the file."""
    return read_session_text(path)[0]


def read_session_text(path: Path, defer_messages: bool = False) -> tuple[Conversation, str]:
    """A session file's conversation and its text; any problem is one SessionError line."""
    try:
        text = path.read_text(encoding="utf-8")
        if defer_messages and text.startswith(_CURRENT_HEAD):
            split = session_format.split_messages(text)
            if split is not None:
                conversation, start, count = split
                conversation.defer_messages(DeferredMessages(text, start, count, path))
                return conversation, text
        with collection.paused():
            return session_format.from_document(json.loads(text)), text
    except session_format.NewerFormatError as error:
        raise SessionError(f"session file {path} was {error}") from error
    except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError) as error:
        raise SessionError(_unreadable(path, error)) from error


def _unreadable(path: Path, error: Exception) -> str:
    return f"cannot read session file {path}: {error}"


class DeferredMessages:
    """A session file's messages, parsed when first read, once, by whichever thread reads them
    first (a resumed REPL's parse thread, usually, while the person types)."""

    def __init__(self, text: str, start: int, count: int, path: Path) -> None:
        self.count = count
        self._text, self._start, self._path = text, start, path
        self._lock = threading.Lock()
        self._messages: list[Message] | None = None
        self._error: str | None = None

    @property
    def ready(self) -> bool:
        """Parsed, or found corrupt, by now."""
        return self._messages is not None or self._error is not None

    def result(self) -> list[Message]:
        """The messages; SessionError naming the file when they cannot be read."""
        with self._lock:
            if not self.ready:
                self._parse()
        if self._error is not None:
            raise SessionError(self._error)
        assert self._messages is not None
        return self._messages

    def _parse(self) -> None:
        try:
            with collection.paused():
                self._messages = session_format.messages_at(self._text, self._start)
        except (ValueError, TypeError, RecursionError) as error:
            self._error = _unreadable(self._path, error)
        self._text = ""
