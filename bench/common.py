"""Shared pieces of the benchmark suite: figures, statistics, paths, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / "bench" / ".venvs"
PACKAGES = (
    "chatrepl",
    "rich",
    "markdown-it-py",
    "Pygments",
    "prompt_toolkit",
    "typer",
    "click",
    "openai",
    "pydantic",
    "httpx",
    "pexpect",
)


@dataclass(frozen=True)
class Figure:
    """One row of a results table: what was measured, against which target, and the verdict."""

    section: str
    name: str
    value: str
    target: str = "—"
    passed: bool | None = None  # None: reference figure without a target

    @property
    def verdict(self) -> str:
        """PASS, FAIL, or a dash for a reference figure."""
        if self.passed is None:
            return "—"
        return "PASS" if self.passed else "FAIL"


def median(values: list[float]) -> float:
    """The median of values (NaN when there are none)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def seconds(value: float) -> str:
    """A duration for the tables: milliseconds below one second, seconds above."""
    if value != value:  # NaN
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def megabytes(count: float) -> str:
    """A byte count in MB (10^6)."""
    return f"{count / 1e6:.2f} MB"


def ratio(value: float) -> str:
    """A ratio such as 1.23x (printed with a multiplication sign)."""
    return f"{value:.2f}×"


def log(message: str) -> None:
    """Progress on stderr, so that stdout carries only the results."""
    print(message, file=sys.stderr, flush=True)


def script(name: str) -> str:
    """The installed console script of this interpreter (not a pyenv or asdf shim)."""
    path = Path(sysconfig.get_path("scripts")) / name
    return str(path) if path.exists() else name


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the figures (absent ones left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision() -> str:
    """The checked-out commit, marked when the work tree has uncommitted changes."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _git(*args: str) -> str:
    """Output of a git command run in the repository."""
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "commit": git_revision(),
    }
