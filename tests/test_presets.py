"""Roles, endpoint profiles, keys from a variable, a command or the keyring, and model lists."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from typer.testing import CliRunner

from chatrepl import config
from chatrepl.cli.typer_app import app
from chatrepl.errors import ConfigError
from tests.fakeserver import FakeOpenAI
from tests.harness import lines, run_repl

runner = CliRunner()


class MemoryKeyring(KeyringBackend):
    """A keyring in memory."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def other_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(models=["other-model"]).start()
    server.api_key = "sk-other-key"
    try:
        yield server
    finally:
        server.stop()


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None, **flags) -> config.Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load_settings(config.Overrides(**flags), env or {}, path)


def test_builtin_roles_and_flags_above_them(tmp_path: Path) -> None:
    shell = load(tmp_path, "", role="shell")
    assert "one" in (shell.system or "") and "command" in (shell.system or "")
    assert shell.temperature == 0
    assert "code only" in (load(tmp_path, "", role="code").system or "")
    roles = '[roles.terse]\nsystem = "Be terse."\nmodel = "m-terse"\ntemperature = 0.3\n'
    terse = load(tmp_path, 'model = "top"\n' + roles, role="terse")
    assert (terse.system, terse.model, terse.temperature) == ("Be terse.", "m-terse", 0.3)
    assert load(tmp_path, roles, role="terse", model="flag").model == "flag"


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("", {"role": "nope"}, "unknown role 'nope'"),
        ("[roles.x]\ntemperature = 9\n", {}, "roles.x: temperature must be from 0 to 2"),
        ('[roles.x]\ncolour = "red"\n', {}, "unknown setting 'colour' in roles.x"),
        ("", {"profile": "nope"}, "unknown profile 'nope'"),
        ('[profiles.p]\nurl = "x"\n', {}, "unknown setting 'url' in profiles.p"),
        ('[profiles.p]\napi_key_env = "NOT_SET_HERE"\n', {"profile": "p"}, "NOT_SET_HERE is not"),
    ],
)
def test_bad_presets_are_one_clear_error(tmp_path: Path, text, flags, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text, **flags)


PROFILES = """
profile = "env"
[profiles.env]
base_url = "http://env.example/v1"
model = "env-model"
api_key_env = "WORK_KEY"
[profiles.cmd]
base_url = "http://cmd.example/v1"
api_key_cmd = "echo sk-from-command"
[profiles.ring]
base_url = "http://ring.example/v1"
[profiles.broken]
api_key_cmd = "echo sk-secret-output; echo vault is locked >&2; exit 3"
"""


def test_profile_keys_from_variable_command_and_keyring(tmp_path: Path, memory_keyring) -> None:
    env = {"WORK_KEY": "sk-from-env", "OPENAI_API_KEY": "sk-openai", "CHATREPL_MODEL": "x"}
    chosen = load(tmp_path, PROFILES, env)
    assert (chosen.base_url, chosen.model, chosen.api_key) == (
        "http://env.example/v1",
        "env-model",
        "sk-from-env",
    )
    assert load(tmp_path, PROFILES, env, profile="cmd").api_key == "sk-from-command"
    # No source of its own: never another server's key; the keyring's when it has one.
    assert load(tmp_path, PROFILES, env, profile="ring").api_key is None
    memory_keyring.set_password("chatrepl", "ring", "sk-from-keyring")
    assert load(tmp_path, PROFILES, env, profile="ring").api_key == "sk-from-keyring"
    flagged = load(tmp_path, PROFILES, env, profile="ring", base_url="http://flag/v1")
    assert flagged.base_url == "http://flag/v1"  # flags beat the profile


def test_failing_key_command_is_one_line_without_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, PROFILES, profile="broken")
    message = str(caught.value)
    assert message == "profile broken: api_key_cmd failed (exit status 3): vault is locked"
    assert "sk-secret-output" not in message


def test_slow_key_command_times_out(tmp_path: Path) -> None:
    from chatrepl.profiles import key_from_command

    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"gave no key in 0\.3 s"):
        key_from_command("slow", "sleep 5", timeout=0.3)
    assert time.monotonic() - started < 3


def test_role_in_the_repl_and_as_a_flag(chatrepl_env) -> None:
    server = chatrepl_env.server
    result = run_repl(lines("/role", "/role shell", "list files"))
    assert "shell" in result.output and "built-in" in result.output and "explain" in result.output
    body = server.last("/chat/completions").body
    assert body is not None and body["temperature"] == 0
    assert "one" in body["messages"][0]["content"] and body["messages"][0]["role"] == "system"
    run_repl(lines("hello"), flags={"role": "code"})
    body = server.last("/chat/completions").body
    assert body is not None and "code only" in body["messages"][0]["content"]


def test_profile_switch_keeps_the_conversation(chatrepl_env, other_server) -> None:
    home = chatrepl_env.home
    (home / "config.toml").write_text(
        f'[profiles.other]\nbase_url = "{other_server.base_url}"\nmodel = "other-model"\n'
        'api_key_env = "OTHER_KEY"\n'
    )
    import os

    os.environ["OTHER_KEY"] = "sk-other-key"
    try:
        result = run_repl(lines("first", "/profile", "/profile other", "second"))
    finally:
        del os.environ["OTHER_KEY"]
    assert "profile other:" in result.output and "other-model" in result.output
    body = other_server.last("/chat/completions").body
    assert body is not None and body["model"] == "other-model"
    assert [m["content"] for m in body["messages"] if m["role"] == "user"] == ["first", "second"]
    assert result.repl.state.conversation.backend == "openai"


def test_unknown_profile_in_the_repl_is_one_line(chatrepl_env) -> None:
    result = run_repl(lines("/profile nope"))
    assert "unknown profile 'nope'" in result.output and "Traceback" not in result.output


def test_models_fetched_in_the_background_for_completion(chatrepl_env) -> None:
    from prompt_toolkit.document import Document

    from chatrepl.repl.prompt import SlashCompleter

    result = run_repl(lines("/help"))
    state = result.repl.state
    deadline = time.monotonic() + 5
    while state.model_cache is None and time.monotonic() < deadline:
        time.sleep(0.02)  # started once the prompt was shown, without /models
    assert state.model_cache == sorted(chatrepl_env.server.models)
    state.models()
    assert [r.path for r in chatrepl_env.server.requests].count("/v1/models") == 1
    first = chatrepl_env.server.models[0]
    offered = [c.text for c in SlashCompleter(state).get_completions(Document("/model "), None)]
    assert first in offered


def test_models_subcommand_and_slash_command(chatrepl_env) -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in chatrepl_env.server.models:
        assert f"{name}  (openai)" in result.output
    shown = run_repl(lines("/models")).output
    assert all(name in shown for name in chatrepl_env.server.models)


def test_ask_takes_a_role_and_a_base_url(chatrepl_env, other_server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-key")
    result = runner.invoke(app, ["ask", "-R", "shell", "--base-url", other_server.base_url, "x"])
    assert result.exit_code == 0, result.output
    body = other_server.last("/chat/completions").body
    assert body is not None and "command" in body["messages"][0]["content"]


def test_set_key_stores_in_the_keyring_and_show_warns(chatrepl_env, memory_keyring) -> None:
    (chatrepl_env.home / "config.toml").write_text(
        'profile = "work"\n[profiles.work]\nbase_url = "http://x/v1"\n'
        '[profiles.plain]\napi_key = "sk-plaintext-secret"\n'
    )
    result = runner.invoke(app, ["config", "set-key"], input="sk-typed-secret\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.items[("chatrepl", "work")] == "sk-typed-secret"
    assert "sk-typed-secret" not in result.output
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "profiles.plain.api_key is written in plain text" in shown.output
    assert "sk-plaintext-secret" not in shown.output and "sk-typed-secret" not in shown.output
    missing = runner.invoke(app, ["config", "set-key", "nope"], input="k\n")
    assert missing.exit_code == 1 and "unknown profile 'nope'" in missing.output
    written = "".join(
        p.read_text(errors="replace") for p in chatrepl_env.home.rglob("*") if p.is_file()
    )
    assert "sk-typed-secret" not in written
