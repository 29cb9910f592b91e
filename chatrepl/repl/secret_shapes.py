"""Whether a line looks like it holds a secret, so that the input history never keeps it.

The token shapes come from detect-secrets (Yelp's maintained list: AWS, GitHub, GitLab, Slack,
Stripe, OpenAI, npm, PyPI, SendGrid, Twilio, Discord, Telegram, JWTs, private keys, passwords in
URLs and in quoted assignments...). Only its patterns are used: nothing is ever sent anywhere to
check a token (its plugins can do that; `analyze_string` never does). Beside that list, the shapes
it lacks that chatrepl's users paste: any OpenAI-compatible server's `sk-...` key, GitHub
fine-grained tokens, Google and Hugging Face keys, and long random-looking tokens of any service.

detect-secrets costs ~0.4 s to load: `prepare()` loads it in a background thread once the prompt
is on screen, and `looks_like_secret` waits for it when it is still loading.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from typing import Any

# detect-secrets' detectors that find what is not a secret (an IP address), or flag any quoted
# high-entropy string, git hashes included (long random tokens are checked below instead).
NOT_SECRETS = ("Public IP (ipv4)", "Base64 High Entropy String", "Hex High Entropy String")

# Shapes detect-secrets 1.5 does not know.
EXTRA_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI (sk-proj-...) and compatible servers
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}"),  # GitHub fine-grained token
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API key
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face token
)
# A long run of letters, digits, '_' and '-' that mixes upper case, lower case and digits looks
# random: a key of an unknown service. Words, identifiers and hex hashes (git SHAs) do not mix.
LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-]{32,}")
_LOADING = threading.Lock()
_preparing = False


def looks_like_secret(text: str) -> bool:
    """Whether text holds something shaped like an API key, token, password or private key."""
    if any(shape.search(text) for shape in EXTRA_SHAPES):
        return True
    if any(_looks_random(match[0]) for match in LONG_TOKEN.finditer(text)):
        return True
    try:
        detectors = _detectors()
    except Exception:  # the list cannot be loaded (a broken install): assume the worst
        return True
    return any(_finds(detector, text) for detector in detectors)


def prepare() -> None:
    """Load the token list in a background thread, ahead of the first line stored (once)."""
    global _preparing
    if not _preparing:
        _preparing = True
        threading.Thread(target=_load_quietly, name="secret-shapes", daemon=True).start()


def _finds(detector: Any, text: str) -> bool:
    return next(iter(detector.analyze_string(text)), None) is not None


def _looks_random(token: str) -> bool:
    return (
        any(c.isupper() for c in token)
        and any(c.islower() for c in token)
        and any(c.isdigit() for c in token)
    )


def _load_quietly() -> None:
    try:
        _detectors()
    except Exception:  # reported as "looks like a secret" when a line is stored
        return


def _detectors() -> tuple[Any, ...]:
    with _LOADING:  # one load, whichever thread asks first
        return _load_detectors()


@functools.cache
def _load_detectors() -> tuple[Any, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    logging.captureWarnings(False)  # detect-secrets turns it on when imported; chatrepl does not
    classes = get_mapping_from_secret_type_to_class()
    return tuple(cls() for kind, cls in classes.items() if kind not in NOT_SECRETS)
