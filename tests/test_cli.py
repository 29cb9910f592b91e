"""The command line around the REPL: sessions and config commands, Azure, start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from chatrepl.cli.entry import repl_start
from chatrepl.cli.typer_app import app
from tests.harness import lines, run_repl

runner = CliRunner()
HEAVY = ("openai", "prompt_toolkit", "rich.markdown", "llama_cpp")


def loaded_modules(*args: str) -> set[str]:
    """Run chatrepl's entry point with args in a fresh interpreter; return sys.modules."""
    code = (
        "import sys, json\n"
        f"sys.argv = ['chatrepl', *{list(args)!r}]\n"
        "from chatrepl.cli.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_version_and_help_import_nothing_heavy() -> None:
    for args in (["--version"], ["--help"], ["ask", "--help"]):
        assert not set(HEAVY) & loaded_modules(*args), args


def test_the_repl_reaches_its_prompt_without_rich(chatrepl_env) -> None:
    """rich costs ~50 ms to import: the banner is printed without it, and it is imported once
    the prompt is up (here: never, as no prompt is shown)."""
    code = (
        "import sys\n"
        "from prompt_toolkit.input import create_pipe_input\n"
        "from prompt_toolkit.output import DummyOutput\n"
        "from chatrepl.cli.build import build_repl\n"
        "from chatrepl.config import Overrides\n"
        "with create_pipe_input() as pipe:\n"
        "    repl = build_repl(Overrides(), None, False, None, input=pipe, output=DummyOutput())\n"
        "    repl.show_banner()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    banner, modules = result.stdout.splitlines()
    assert banner.startswith("chatrepl ") and "session (new)" in banner
    assert modules == "[]", result.stderr


def test_common_repl_starts_skip_typer() -> None:
    assert repl_start([]) == (None, False)
    assert repl_start(["--resume", "notes"]) == repl_start(["-r", "notes"]) == ("notes", False)
    assert repl_start(["--continue"]) == repl_start(["-c"]) == (None, True)
    for args in (["--resume"], ["-r", "--help"], ["--resume", "a", "--model", "m"], ["ask"]):
        assert repl_start(args) is None, args  # the typer app parses these


def test_resume_without_typer_says_what_typer_would(chatrepl_env) -> None:
    fast = subprocess.run(
        [sys.executable, "-m", "chatrepl", "--resume", "nope"], capture_output=True, text=True
    )
    assert fast.returncode == 1
    assert fast.stderr == "error: no session named 'nope' (see `chatrepl sessions list`)\n"
    typed = runner.invoke(app, ["--resume", "nope", "--debug"])
    assert typed.exit_code == 1 and typed.stderr == fast.stderr
    assert "typer" not in loaded_modules("--resume", "nope")


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatrepl", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("chatrepl ")


def test_command_line_mistakes_are_one_line_and_exit_1() -> None:
    for args in (["ask", "--bogus"], ["--nope"], ["sessions", "show"]):
        result = subprocess.run(
            [sys.executable, "-m", "chatrepl", *args], capture_output=True, text=True
        )
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args


def test_sessions_alone_lists_them(chatrepl_env) -> None:
    run_repl(lines("listed by default"))
    assert runner.invoke(app, ["sessions"]).stdout.startswith("listed-by-default  ")


def test_sessions_list_show_rename_delete(chatrepl_env) -> None:
    run_repl(lines("kept for the cli", "/rename cli-one"))
    listed = runner.invoke(app, ["sessions", "list"])
    assert listed.exit_code == 0 and listed.stdout.startswith("cli-one  ")
    shown = runner.invoke(app, ["sessions", "show", "cli-one"])
    assert "kept for the cli" in shown.stdout and "Echo: kept for the cli" in shown.stdout
    assert runner.invoke(app, ["sessions", "rename", "cli-one", "cli-two"]).exit_code == 0
    assert runner.invoke(app, ["sessions", "show", "cli-one"]).exit_code == 1
    refused = runner.invoke(app, ["sessions", "rename", "cli-two", "a/b"])
    assert refused.exit_code == 1 and "path separators" in refused.stderr
    assert runner.invoke(app, ["sessions", "delete", "cli-two"], input="n\n").exit_code == 1
    assert runner.invoke(app, ["sessions", "delete", "cli-two", "--yes"]).exit_code == 0
    assert runner.invoke(app, ["sessions", "list"]).stdout == ""


def test_corrupt_session_file_is_one_line_and_untouched(chatrepl_env) -> None:
    sessions = chatrepl_env.home / "sessions"
    sessions.mkdir()
    (sessions / "bad.json").write_text("{oops")
    result = runner.invoke(app, ["--resume", "bad"])
    assert result.exit_code == 1
    assert (
        result.stderr.startswith("error: cannot read session file") and "bad.json" in result.stderr
    )
    assert (sessions / "bad.json").read_text() == "{oops"


def test_config_path_and_show_mask_secrets(chatrepl_env) -> None:
    path = runner.invoke(app, ["config", "path"]).stdout.strip()
    assert path == str(chatrepl_env.home / "config.toml")
    (chatrepl_env.home / "config.toml").write_text('model = "from-config"\n')
    shown = runner.invoke(app, ["config", "show"]).stdout
    assert 'model = "from-config"' in shown
    assert "sk-test" not in shown and "# api_key is set (not shown)" in shown
    import tomllib

    assert tomllib.loads(shown)["model"] == "from-config"  # valid TOML


def test_config_file_model_is_used(chatrepl_env) -> None:
    (chatrepl_env.home / "config.toml").write_text('model = "from-config"\n')
    runner.invoke(app, ["ask", "hi"])
    assert chatrepl_env.server.last("/chat/completions").body["model"] == "from-config"


def test_bad_config_file_is_one_line(chatrepl_env) -> None:
    (chatrepl_env.home / "config.toml").write_text("model = = 1\n")
    result = runner.invoke(app, ["ask", "hi"])
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot read config file")


def test_azure_variables_select_the_azure_client(chatrepl_env, monkeypatch) -> None:
    server = chatrepl_env.server
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.base_url.removesuffix("/v1"))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    result = runner.invoke(app, ["ask", "--model", "my-deployment", "hi"])
    assert result.exit_code == 0, result.output
    request = server.last("/chat/completions")
    assert "/openai/deployments/my-deployment/chat/completions" in request.path
    assert request.query.get("api-version") in ("2024-10-21", ["2024-10-21"])
    assert request.headers["api-key"] == "azure-key"


def test_input_history_persists_and_skips_secrets(chatrepl_env) -> None:
    run_repl(lines("remember this line", "my key is sk-abcdefghijklmnopqrstuvwxyz123456"))
    history = (chatrepl_env.home / "history").read_text()
    assert "remember this line" in history
    assert "sk-abcdefghijklmnop" not in history
    up_arrow = "\x1b[A"
    run_repl(up_arrow + "\r")  # a new run: Up recalls the last line from the history file
    assert chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"] == (
        "remember this line"
    )
