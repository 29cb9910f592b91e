"""Keep llama.cpp off its AMX code path, which crashes when GCC 12 built it with -march=native.

GCC 12's `_tile_loadconfig` intrinsic declares an 8-byte read, so the compiler drops the stores
that fill ggml's 64-byte AMX tile configuration and `ldtilecfg` loads stack garbage: the first
prompt on a Sapphire Rapids class CPU dies with SIGSEGV (ggml-org/llama.cpp issue 20824). AMX is
reached only through llama.cpp's "extra" buffer types (weights repacked for AMX), so a build
with AMX compiled in loads its weights without them: every other SIMD path (AVX-512, AVX2)
stays. Builds without AMX, the common case, are left exactly as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_patch_lock = threading.Lock()


def amx_compiled(system_info: str) -> bool:
    """Whether llama.cpp's system info says its CPU backend was built with AMX."""
    return "AMX_INT8 = 1" in system_info


def system_info(llama_cpp: Any) -> str:
    """llama.cpp's feature line (`CPU : SSE3 = 1 | AVX = 1 | ...`)."""
    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


@contextmanager
def without_amx_buffers(llama_cpp: Any) -> Iterator[bool]:
    """Inside, models load with `use_extra_bufts = False` when AMX is compiled in.

    `Llama()` takes no argument for that field: it builds its parameters from
    `llama_model_default_params()`, so that function is wrapped for the duration of the load.
    Yields whether the guard is in force.
    """
    if not amx_compiled(system_info(llama_cpp)):
        yield False
        return
    low_level = llama_cpp.llama_cpp
    with _patch_lock:
        original = low_level.llama_model_default_params

        def safe_defaults() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        low_level.llama_model_default_params = safe_defaults
        try:
            yield True
        finally:
            low_level.llama_model_default_params = original


def run_server_without_amx() -> None:
    """`python -m chatrepl.backends.amx_guard ARGS`: llama.cpp's server, guarded the same way."""
    import runpy
    import sys

    import llama_cpp

    sys.argv[0] = "llama_cpp.server"
    with without_amx_buffers(llama_cpp):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_server_without_amx()
