"""The embedded model never meets llama.cpp's AMX path (a GCC 12 miscompile crashes it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pytest

from chatrepl.backends import amx_guard
from chatrepl.backends.local_backend import local_backend_available

WITH_AMX = b"CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 | "
WITHOUT_AMX = b"CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | REPACK = 1 | "


class Params:
    use_extra_bufts = True


def stand_in_llama_cpp(info: bytes) -> types.SimpleNamespace:
    """The two functions of llama_cpp the guard uses, with llama.cpp's real shapes."""
    low_level = types.SimpleNamespace(llama_model_default_params=Params)
    return types.SimpleNamespace(llama_print_system_info=lambda: info, llama_cpp=low_level)


def test_amx_is_read_from_llamas_system_info() -> None:
    assert amx_guard.amx_compiled(WITH_AMX.decode())
    assert not amx_guard.amx_compiled(WITHOUT_AMX.decode())
    assert not amx_guard.amx_compiled("CPU : AMX_INT8 = 0 | ")


def test_with_amx_compiled_in_models_load_without_extra_buffers() -> None:
    llama = stand_in_llama_cpp(WITH_AMX)
    with amx_guard.without_amx_buffers(llama) as guarded:
        assert guarded
        assert llama.llama_cpp.llama_model_default_params().use_extra_bufts is False
    assert llama.llama_cpp.llama_model_default_params is Params  # restored afterwards


def test_without_amx_nothing_changes() -> None:
    llama = stand_in_llama_cpp(WITHOUT_AMX)
    with amx_guard.without_amx_buffers(llama) as guarded:
        assert not guarded
        assert llama.llama_cpp.llama_model_default_params is Params


@pytest.mark.skipif(not local_backend_available(), reason="embedded model missing")
def test_the_real_llama_cpp_is_guarded_exactly_when_it_has_amx() -> None:
    import llama_cpp

    has_amx = amx_guard.amx_compiled(amx_guard.system_info(llama_cpp))
    with amx_guard.without_amx_buffers(llama_cpp) as guarded:
        params = llama_cpp.llama_cpp.llama_model_default_params()
        assert guarded == has_amx
        assert params.use_extra_bufts is (not has_amx)


@pytest.mark.skipif(not local_backend_available(), reason="embedded model missing")
def test_the_embedded_model_answers_a_multi_token_prompt_in_a_fresh_process() -> None:
    """The AMX crash killed the process on the first prompt of more than one token: a
    segmentation fault here is a failing exit status, never a skip."""
    script = textwrap.dedent(
        """
        from chatrepl.backends.base import ChatRequest, TextDelta
        from chatrepl.backends.local_backend import LocalBackend, default_model_path
        from chatrepl.conversation.messages import GenerationParams, Message

        backend = LocalBackend(default_model_path())
        question = Message("user", "Name three colours of the rainbow, please.")
        request = ChatRequest("m", (question,), params=GenerationParams(max_tokens=8))
        print("".join(d.text for d in backend.stream(request) if isinstance(d, TextDelta)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, (
        f"the embedded model's process ended with {result.returncode} "
        f"(negative: killed by that signal):\n{result.stderr[-2000:]}"
    )
    assert result.stdout.strip()
