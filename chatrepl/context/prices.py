"""Prices and known context windows of models, from the `genai-prices` package (offline data).

Its data module is large (~0.15 s to import), so it is imported only when a price or window is
first asked for, or by `warm_up()` in a background thread once the prompt is on screen.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from functools import lru_cache
from typing import Any

from chatrepl.conversation.messages import Usage

_import_lock = threading.Lock()
_warming = False


def _prices() -> Any | None:
    with _import_lock:
        try:
            import genai_prices
        except ImportError:
            return None
        return genai_prices


def warm_up_in_background() -> None:
    """Start importing the price data in a daemon thread (once), so the first reply's cost does
    not wait for it."""
    global _warming
    with _import_lock:
        if _warming:
            return
        _warming = True
    threading.Thread(target=_prices, name="genai-prices", daemon=True).start()


def cost(
    model: str, usage: Usage, base_url: str | None, provider: str | None = None
) -> Decimal | None:
    """The price of one request in USD, or None when the model's price is unknown."""
    prices = _prices()
    if prices is None or not model:
        return None
    tokens = prices.Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
    try:
        found = prices.calc_price(tokens, model, **_provider(base_url, provider))
    except (LookupError, ValueError):
        return None
    return Decimal(str(found.total_price))


@lru_cache(maxsize=64)
def known_context_window(
    model: str, base_url: str | None, provider: str | None = None
) -> int | None:
    """The model's context window in tokens, as the price data knows it."""
    prices = _prices()
    if prices is None or not model:
        return None
    usage = prices.Usage(input_tokens=0, output_tokens=0)
    # A window is the model's, wherever it is served: without a known provider, by model name.
    for provider_args in (_provider(base_url, provider), {}):
        try:
            return prices.calc_price(usage, model, **provider_args).model.context_window
        except (LookupError, ValueError):
            continue
    return None


def _provider(base_url: str | None, provider: str | None) -> dict[str, str]:
    """Which provider's prices apply: the `provider` setting, else the one whose API URL this
    is, else (no URL: OpenAI's own API) the model's usual provider.

    A server at another URL (llama.cpp, Ollama, vLLM, a gateway) matches no provider, so its
    price is unknown and no cost is shown rather than a wrong one; set `provider` for a gateway
    that bills like a known provider.
    """
    if provider:
        return {"provider_id": provider}
    return {"provider_api_url": base_url} if base_url else {}
