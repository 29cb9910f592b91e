"""Endpoint profiles (`[profiles.NAME]`): a server, its models and where its key comes from —
an environment variable, a command (a password manager), or the system keyring."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatrepl.errors import ConfigError

KEYRING_SERVICE = "chatrepl"
KEY_COMMAND_TIMEOUT = 30.0  # seconds: a password manager may ask to be unlocked
PROFILE_KEYS = (
    "base_url",
    "model",
    "completion_model",
    "api_key",
    "api_key_env",
    "api_key_cmd",
    "azure_endpoint",
    "api_version",
)
ENDPOINT_KEYS = ("base_url", "azure_endpoint", "api_version")  # a profile resets the others'
KEY_ADVICE = "use api_key_env, api_key_cmd or `chatrepl config set-key`"


def check_profile(name: str, table: Any) -> dict[str, str]:
    """A `[profiles.NAME]` table, checked: known keys, string values."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"profiles.{name} must be a table")
    for key, value in table.items():
        if key not in PROFILE_KEYS:
            raise ConfigError(
                f"unknown setting {key!r} in profiles.{name}: use {', '.join(PROFILE_KEYS)}"
            )
        if not isinstance(value, str):
            raise ConfigError(f"profiles.{name}.{key} must be a string, not {value!r}")
    return dict(table)


def find_profile(name: str, profiles: Mapping[str, Any]) -> dict[str, str]:
    """The profile called `name`; an unknown one is a ConfigError naming the known ones."""
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none is configured"
        raise ConfigError(f"unknown profile {name!r} ([profiles.NAME] in the config): {known}")
    return check_profile(name, profiles[name])


def profile_settings(
    name: str, profiles: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The settings a profile sets: its endpoint and models, and its key (or none: another
    server's key is never sent to this one)."""
    profile = find_profile(name, profiles)
    values: dict[str, Any] = {key: profile.get(key) for key in ENDPOINT_KEYS}
    values.update({k: profile[k] for k in ("model", "completion_model") if k in profile})
    values["backend"] = "openai"
    values["api_key"] = profile_key(name, profile, environ)
    values["azure_api_key"] = None
    return values


def profile_key(name: str, profile: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """The profile's key: written in it, from its variable, its command, else the keyring."""
    if profile.get("api_key"):
        return profile["api_key"]
    variable = profile.get("api_key_env")
    if variable:
        if not environ.get(variable):
            raise ConfigError(f"profile {name}: the environment variable {variable} is not set")
        return environ[variable]
    if profile.get("api_key_cmd"):
        return key_from_command(name, profile["api_key_cmd"])
    return keyring_key(name)


def key_from_command(name: str, command: str, timeout: float = KEY_COMMAND_TIMEOUT) -> str:
    """The first line a command prints (`pass show openai`); failures are one line, the key never
    shown."""
    try:
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"profile {name}: api_key_cmd gave no key in {timeout:g} s") from None
    except OSError as error:
        raise ConfigError(f"profile {name}: api_key_cmd cannot run: {error}") from None
    key = done.stdout.strip().splitlines()[0].strip() if done.stdout.strip() else ""
    if done.returncode != 0 or not key:
        why = first_line(done.stderr) or ("it printed nothing" if not key else "")
        status = f"exit status {done.returncode}" if done.returncode else "no output"
        raise ConfigError(f"profile {name}: api_key_cmd failed ({status}): {why}".rstrip(": "))
    return key


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of a command's error output, shortened."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def keyring_key(name: str) -> str | None:
    """The key stored for this profile in the system keyring (None without keyring or key)."""
    try:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, name)
    except NoKeyringError:
        return None
    except KeyringError as error:
        raise ConfigError(f"profile {name}: the keyring failed: {error}") from None


def store_key(name: str, key: str) -> None:
    """Keep `key` in the system keyring for this profile."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        raise ConfigError("the keyring is not installed: pip install 'chatrepl[keyring]'") from None
    try:
        keyring.set_password(KEYRING_SERVICE, name, key)
    except KeyringError as error:
        raise ConfigError(f"cannot store the key in the keyring: {error}") from None


def plaintext_key_warnings(path: Path) -> list[str]:
    """One line per key written in plain text in the config file."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    places = [name for name in ("api_key", "azure_api_key") if data.get(name)]
    profiles = data.get("profiles")
    if isinstance(profiles, Mapping):
        places += [
            f"profiles.{name}.api_key"
            for name, table in profiles.items()
            if isinstance(table, Mapping) and table.get("api_key")
        ]
    return [
        f"warning: {place} is written in plain text in {path}: {KEY_ADVICE}" for place in places
    ]
