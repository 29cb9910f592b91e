"""The bodies of `chatrepl sessions ...` and `chatrepl config ...`."""

from __future__ import annotations

from dataclasses import fields

from chatrepl.config import Settings, load_settings, sessions_dir
from chatrepl.conversation.store import SessionStore

SECRET_FIELDS = ("api_key", "azure_api_key")


def list_sessions() -> None:
    """`chatrepl sessions list`."""
    store = SessionStore(sessions_dir())
    for info in store.list():
        print(f"{info.name}\t{info.updated}\t{info.summary}")


def show_session(name: str) -> None:
    """`chatrepl sessions show NAME`."""
    from rich.console import Console

    from chatrepl.ui import views

    views.transcript(Console(highlight=False), SessionStore(sessions_dir()).load(name).messages)


def delete_session(name: str) -> None:
    """`chatrepl sessions delete NAME`."""
    SessionStore(sessions_dir()).delete(name)
    print(f"deleted {name}")


def rename_session(old: str, new: str) -> None:
    """`chatrepl sessions rename OLD NEW`."""
    SessionStore(sessions_dir()).rename(old, new)
    print(f"renamed {old} to {new}")


def show_config() -> None:
    """`chatrepl config show`: every setting and its value, secrets masked."""
    settings = load_settings()
    for item in fields(Settings):
        value = getattr(settings, item.name)
        if item.name in SECRET_FIELDS and value:
            value = "(set)"
        print(f"{item.name} = {value!r}")
