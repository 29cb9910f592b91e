"""The programs compared: chatrepl, and llm and shell_gpt in their own venvs under bench/.venvs/.

Competitors are never installed into the main environment (they pin shared libraries such as
openai and rich to other versions). `--competitors` creates their venvs; without it they are used
when present and skipped when not. For the comparison with them, chatrepl too runs from its own
venv (bench/.venvs/chatrepl, `pip install .` of this tree, as a user installs it): the main
environment's test extras and other versions of shared libraries (pydantic, say) change how fast
`import openai` is, by 0.2 s here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from common import REPO, VENVS, log, script

CHATREPL_PROMPT = r"chat(?:\x1b\[[0-9;]*m)*>"
PROMPT = "hi"
ANSWER = "Echo: hi"
MODEL = "test-model"
API_KEY = "sk-bench"
# Variables of the person running the benchmark that would point a program elsewhere.
_SCRUBBED = ("OPENAI_", "AZURE_OPENAI_", "CHATREPL_", "LLM_", "API_BASE_URL", "DEFAULT_MODEL")


@dataclass(frozen=True)
class Tool:
    """How to open a program's REPL, print its version and ask it one question."""

    name: str
    version: str
    repl: list[str]
    prompt: str  # regex of its REPL prompt
    version_argv: list[str]
    ask: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Competitor:
    """A competitor: its PyPI requirements and where its venv lives."""

    name: str
    distribution: str
    requirements: tuple[str, ...]

    @property
    def venv(self) -> Path:
        """Its venv under bench/.venvs/."""
        return VENVS / self.name

    @property
    def executable(self) -> Path:
        """Its command inside the venv."""
        return self.venv / "bin" / self.name


COMPETITORS = (
    Competitor("llm", "llm", ("llm",)),
    # shell-gpt 1.5 imports click, which newer typer releases no longer install.
    Competitor("sgpt", "shell-gpt", ("shell-gpt", "click")),
)


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without the runner's API settings or bytecode opt-out, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    # Users' Pythons cache bytecode; without it every run would compile chatrepl's own modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def chatrepl(base_url: str, home: Path) -> Tool:
    """chatrepl, the installed console script, against the local server."""
    command = script("chatrepl")
    env = clean_environment(
        CHATREPL_HOME=str(home),
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY=API_KEY,
        CHATREPL_MODEL=MODEL,
    )
    return Tool(
        "chatrepl",
        metadata.version("chatrepl"),
        [command],
        CHATREPL_PROMPT,
        [command, "--version"],
        [command, "ask", PROMPT],
        env,
    )


def llm(base_url: str, home: Path) -> Tool:
    """simonw's llm: a model `bench` declared in extra-openai-models.yaml (it ignores the env)."""
    command = str(COMPETITORS[0].executable)
    home.mkdir(parents=True, exist_ok=True)
    (home / "extra-openai-models.yaml").write_text(
        f"- model_id: bench\n  model_name: {MODEL}\n  api_base: {base_url}\n"
    )
    env = clean_environment(LLM_USER_PATH=str(home), OPENAI_API_KEY=API_KEY)
    return Tool(
        "llm",
        installed_version(COMPETITORS[0]),
        [command, "chat", "-m", "bench"],
        r"\r\n> ",
        [command, "--version"],
        [command, "-m", "bench", PROMPT],
        env,
    )


def sgpt(base_url: str, home: Path) -> Tool:
    """shell_gpt: configured by environment; its .sgptrc and caches go to a temporary home."""
    command = str(COMPETITORS[1].executable)
    env = clean_environment(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        API_BASE_URL=base_url,
        OPENAI_API_KEY=API_KEY,
        DEFAULT_MODEL=MODEL,
        CHAT_CACHE_PATH=str(home / "chat_cache"),
        CACHE_PATH=str(home / "cache"),
    )
    return Tool(
        "sgpt",
        installed_version(COMPETITORS[1]),
        [command, "--repl", "temp"],
        ">>> ",
        [command, "--version"],
        # Without --no-cache a repeated question is answered from its cache, not the server.
        [command, "--no-cache", PROMPT],
        env,
    )


CHATREPL_VENV = VENVS / "chatrepl"


def chatrepl_in_venv(base_url: str, home: Path) -> Tool | None:
    """chatrepl installed in its own venv like the competitors (None when not made yet)."""
    command = CHATREPL_VENV / "bin" / "chatrepl"
    if not command.exists():
        return None
    tool = chatrepl(base_url, home)
    argv = [str(command)]
    return Tool("chatrepl-venv", tool.version, argv, tool.prompt, [*argv, "--version"],
                [*argv, "ask", PROMPT], tool.env)  # fmt: skip


def install_chatrepl() -> str | None:
    """Make chatrepl's venv, or put this tree's chatrepl into it again; why it failed, if it did."""
    run = {"check": True, "capture_output": True, "text": True}
    pip = str(CHATREPL_VENV / "bin" / "pip")
    try:
        if not (CHATREPL_VENV / "bin" / "chatrepl").exists():
            log(f"competitors: creating {CHATREPL_VENV} with this tree's chatrepl")
            subprocess.run([sys.executable, "-m", "venv", str(CHATREPL_VENV)], **run)
            subprocess.run([pip, "install", "--quiet", str(REPO)], **run)
        else:
            subprocess.run([pip, "install", "--quiet", "--no-deps", "--force-reinstall",
                            str(REPO)], **run)  # fmt: skip
    except subprocess.CalledProcessError as error:
        return f"install failed: {_tail(error.stderr or error.stdout)}"
    return None


def installed_version(competitor: Competitor) -> str:
    """The version installed in a competitor's venv."""
    found = list(competitor.venv.glob(f"lib/python*/site-packages/{_dist_glob(competitor)}"))
    if not found:
        return "?"
    dist = metadata.Distribution.at(found[0])
    return dist.version


def _dist_glob(competitor: Competitor) -> str:
    """The glob of a competitor's .dist-info folder."""
    return competitor.distribution.replace("-", "_") + "-*.dist-info"


def available(base_url: str, root: Path) -> tuple[list[Tool], dict[str, str]]:
    """Competitors whose venvs exist, and why the others are missing."""
    makers = {"llm": llm, "sgpt": sgpt}
    tools, missing = [], {}
    for competitor in COMPETITORS:
        if competitor.executable.exists():
            tools.append(makers[competitor.name](base_url, root / competitor.name))
        else:
            missing[competitor.name] = (
                f"not installed: run with --competitors to create {competitor.venv}"
            )
    return tools, missing


def install() -> dict[str, str]:
    """Create the competitors' venvs that are missing; return why any could not be made."""
    failures = {}
    for competitor in COMPETITORS:
        if competitor.executable.exists():
            continue
        log(f"competitors: creating {competitor.venv} and installing {competitor.requirements}")
        try:
            _create(competitor)
        except subprocess.CalledProcessError as error:
            failures[competitor.name] = f"install failed: {_tail(error.stderr or error.stdout)}"
    return failures


def _create(competitor: Competitor) -> None:
    """python -m venv, then pip install the competitor's requirements into it."""
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run([sys.executable, "-m", "venv", str(competitor.venv)], **run)
    pip = str(competitor.venv / "bin" / "pip")
    subprocess.run([pip, "install", "--quiet", *competitor.requirements], **run)


def _tail(text: str | None) -> str:
    """The last line of an error output."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
