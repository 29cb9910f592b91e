"""Roles: named presets of system prompt, model and generation parameters (`[roles.NAME]`),
with a few built in. A role's values sit between the config file and the flags."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatrepl.errors import ConfigError
from chatrepl.parameters import BY_NAME, parse

ROLE_KEYS = ("system", "model", "completion_model", *BY_NAME)


@dataclass(frozen=True)
class Role:
    """One role: where it comes from and the settings it sets."""

    name: str
    source: str  # "built-in" or "config"
    values: Mapping[str, Any]

    @property
    def system(self) -> str | None:
        """Its system prompt."""
        return self.values.get("system")

    @property
    def params(self) -> dict[str, Any]:
        """Its generation parameters, validated."""
        return {k: v for k, v in self.values.items() if k in BY_NAME}

    def summary(self) -> str:
        """One line: its model and parameters, then the start of its prompt."""
        extras = [f"{k}={v}" for k, v in self.values.items() if k != "system"]
        prompt = " ".join((self.system or "").split())
        prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
        return "; ".join([*extras, prompt] if prompt else extras)


def _shell_name() -> str:
    if platform.system() == "Windows":
        return "PowerShell"
    return os.path.basename(os.environ.get("SHELL", "")) or "sh"


def builtin_roles() -> dict[str, dict[str, Any]]:
    """The roles every chatrepl has (a `[roles.NAME]` of the same name replaces one)."""
    system = platform.system() or "Linux"
    return {
        "shell": {
            "system": f"You turn requests into one {_shell_name()} command for {system}. Answer "
            "with that one command and nothing else: no explanation, no Markdown, no code "
            "fences. Join several steps into one line with && or pipes.",
            "temperature": 0,
        },
        "code": {
            "system": "Answer with code only: no prose before or after it and no Markdown "
            "fences; put any explanation in comments. Complete, runnable code.",
        },
        "explain": {
            "system": "Explain the code, command or error you are given: what it does, step "
            "by step, and anything surprising or risky in it. Be brief and concrete.",
        },
    }


def all_roles(configured: Mapping[str, Any]) -> dict[str, Role]:
    """Built-in and configured roles by name, each validated."""
    roles = {name: Role(name, "built-in", values) for name, values in builtin_roles().items()}
    for name, values in configured.items():
        roles[name] = Role(name, "config", check_role(name, values))
    return roles


def find_role(name: str, configured: Mapping[str, Any]) -> Role:
    """The role called `name`; an unknown one is a ConfigError listing the known ones."""
    roles = all_roles(configured)
    if name not in roles:
        raise ConfigError(f"unknown role {name!r}: use one of {', '.join(sorted(roles))}")
    return roles[name]


def check_role(name: str, values: Any) -> dict[str, Any]:
    """A `[roles.NAME]` table's values, checked: known keys, strings, parameters in range."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"roles.{name} must be a table")
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in ROLE_KEYS:
            raise ConfigError(
                f"unknown setting {key!r} in roles.{name}: use {', '.join(ROLE_KEYS)}"
            )
        checked[key] = _role_value(name, key, value)
    return checked


def _role_value(name: str, key: str, value: Any) -> Any:
    if key in BY_NAME:
        try:
            return parse(key, value)
        except ValueError as error:
            raise ConfigError(f"roles.{name}: {error}") from None
    if not isinstance(value, str):
        raise ConfigError(f"roles.{name}.{key} must be a string, not {value!r}")
    return value
