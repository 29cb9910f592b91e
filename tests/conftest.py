"""Shared fixtures: the fake OpenAI server (every request checked against the spec) and an
isolated chatrepl environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from tests.fakeserver import FakeOpenAI, Recorded
from tests.openapi_schema import validate_request

# Plugins: the real llama.cpp server fixture (session-scoped, skipped when not installed).
pytest_plugins = ["tests.llama_server"]

SKIP_SPEC_MARK = "allow_invalid_requests"

# Environment variables removed before each test: everything chatrepl, the SDK or Azure read.
CLEARED_PREFIXES = ("CHATREPL_", "OPENAI_", "AZURE_OPENAI_")
CLEARED_NAMES = ("NO_COLOR",)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the embedded model must be there: its tests (which would catch a native crash)
    may never be skipped silently."""
    from chatrepl.backends.local_backend import local_backend_available

    if os.environ.get("CI") and not local_backend_available():
        raise pytest.UsageError("CI: llama-cpp-python or the SmolLM2 model is not installed")


def pytest_configure(config: pytest.Config) -> None:
    """Register this suite's markers."""
    config.addinivalue_line(
        "markers",
        f"{SKIP_SPEC_MARK}: do not validate the fake server's requests against the OpenAPI spec",
    )


def spec_errors(requests: list[Recorded]) -> list[str]:
    """Return a description of every recorded POST that the OpenAPI spec rejects."""
    problems = []
    for rec in requests:
        if rec.method != "POST":
            continue
        if rec.body is None:
            problems.append(f"POST {rec.path}: body is not a JSON object")
            continue
        try:
            validate_request(rec.path, rec.body)
        except jsonschema.ValidationError as err:
            where = "/".join(map(str, err.absolute_path)) or "<body>"
            problems.append(f"POST {rec.path}: {where}: {err.message}\n  body: {rec.body}")
    return problems


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI; afterwards every POST it received must match the OpenAI spec."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
    if server.errors:
        pytest.fail(f"fake server raised: {server.errors!r}", pytrace=False)
    if request.node.get_closest_marker(SKIP_SPEC_MARK) is None:
        problems = spec_errors(server.requests)
        if problems:
            pytest.fail("requests violate the OpenAI spec:\n" + "\n".join(problems), pytrace=False)


@dataclass
class ChatReplEnv:
    """What ``chatrepl_env`` gives a test: the home directory, the server and the environment."""

    home: Path
    server: FakeOpenAI

    @property
    def env(self) -> dict[str, str]:
        """A copy of the current environment, for subprocesses."""
        return dict(os.environ)


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear the user's chatrepl/OpenAI/Azure settings; return a fresh CHATREPL_HOME."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name)
    home = tmp_path / "chatrepl-home"
    home.mkdir()
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    monkeypatch.setenv("CHATREPL_HOME", str(home))
    monkeypatch.setenv("CHATREPL_MAX_RETRIES", "0")
    return home


@pytest.fixture
def chatrepl_env(
    fake_server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ChatReplEnv:
    """Point chatrepl at a temp home and the fake server, with nothing from the user's env."""
    home = isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return ChatReplEnv(home=home, server=fake_server)
