"""Settings precedence, config file errors, directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatrepl import config
from chatrepl.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    file = write(
        tmp_path / "config.toml",
        'model = "from-file"\ncompletion_model = "file-c"\n'
        'system = "file system"\nmax_tokens = 99\n',
    )
    env = {"CHATREPL_MODEL": "from-env", "CHATREPL_COMPLETION_MODEL": "env-c"}
    settings = config.load_settings(config.Overrides(model="from-flag"), env, file)
    assert settings.model == "from-flag"
    assert settings.completion_model == "env-c"
    assert settings.system == "file system"
    assert settings.max_tokens == 99
    assert config.load_settings(None, {}, tmp_path / "missing.toml").model == "gpt-4o-mini"


def test_environment_variables(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
        "OPENAI_API_VERSION": "2024-10-21",
        "CHATREPL_MAX_RETRIES": "0",
        "CHATREPL_BACKEND": "local",
    }
    settings = config.load_settings(None, env, tmp_path / "none.toml")
    assert settings.api_key == "k" and settings.base_url.endswith("/v1")
    assert settings.uses_azure and settings.api_version == "2024-10-21"
    assert settings.max_retries == 0 and settings.backend == "local"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model = ", "cannot read config file"),
        ("colour = 1", "unknown setting 'colour'"),
        ('max_tokens = "lots"', "must be a whole number"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load_settings(None, {}, write(tmp_path / "config.toml", text))


def test_chatrepl_home_overrides_directories(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHATREPL_HOME", str(tmp_path))
    assert config.config_path() == tmp_path / "config.toml"
    assert config.sessions_dir() == tmp_path / "sessions"
    assert config.history_path() == tmp_path / "history"


def test_platform_directories_without_override(monkeypatch) -> None:
    monkeypatch.delenv("CHATREPL_HOME", raising=False)
    assert "chatrepl" in str(config.config_dir())
    assert "chatrepl" in str(config.data_dir())


def test_an_unknown_backend_is_one_clear_error(tmp_path: Path) -> None:
    from chatrepl.backends.registry import build_backend

    settings = config.load_settings(None, {}, write(tmp_path / "config.toml", 'backend = "gemini"'))
    with pytest.raises(ConfigError, match="unknown backend 'gemini': use one of openai, local"):
        build_backend(settings)


def test_choices_and_the_code_theme_are_checked(tmp_path: Path) -> None:
    for text, message in (
        ('editing_mode = "vim"', "editing_mode must be emacs or vi"),
        ('code_theme = "monokia"', "unknown code_theme 'monokia'"),
        ('context = "forget"', "context must be summarize or trim or off"),
        ("temperature = 3", "temperature must be from 0 to 2"),
        ("chat_max_tokens = 0", "chat_max_tokens must be at least 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            config.load_settings(None, {}, write(tmp_path / "config.toml", text))
    good = write(tmp_path / "config.toml", 'code_theme = "github-dark"\nstop = ["END"]')
    settings = config.load_settings(None, {}, good)
    assert settings.code_theme == "github-dark" and settings.stop == ("END",)
