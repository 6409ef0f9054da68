# SPDX-License-Identifier: Apache-2.0
"""Which reader and writer handle which format, and telling formats apart by content.

Readers are ``parse(data: bytes, source: str) -> Policy``; they raise :class:`PolicyError` only
for a file they cannot read at all. Writers are ``write(suggestion) -> str``. Modules load on
first use, so ``import pinscan`` does not pay for XML and plist parsing.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from pinscan.errors import PolicyError
from pinscan.policy.model import Policy, Suggestion

# format -> (module, reader function): one module per family of formats.
READERS: dict[str, tuple[str, str]] = {
    "android": ("pinscan.policy.android", "parse"),
    "trustkit-android": ("pinscan.policy.android", "parse_trustkit"),
    "ios": ("pinscan.policy.ios", "parse"),
    "trustkit": ("pinscan.policy.trustkit", "parse"),
    "okhttp": ("pinscan.policy.okhttp", "parse"),
    "hpkp": ("pinscan.policy.hpkp", "parse"),
    "curl": ("pinscan.policy.curl", "parse"),
    "chromium": ("pinscan.policy.chromium", "parse"),
    "toml": ("pinscan.policy.toml", "parse"),
}

# The formats `pinscan suggest` writes.
WRITERS: dict[str, tuple[str, str]] = {
    "android": ("pinscan.policy.android", "write"),
    "ios": ("pinscan.policy.ios", "write"),
    "trustkit": ("pinscan.policy.trustkit", "write"),
    "okhttp": ("pinscan.policy.okhttp", "write"),
    "hpkp": ("pinscan.policy.hpkp", "write"),
    "curl": ("pinscan.policy.curl", "write"),
    "toml": ("pinscan.policy.toml", "write"),
}

# Content sniffers, most specific first: each module's ``sniff(data) -> list[str]`` names the
# formats it recognises in the data (an Android file with <trustkit-config> is read by both
# Android and TrustKit-Android; an Info.plist can hold both ATS pins and a TrustKit dictionary, so
# one sniffer, the shared plist/JSON loader's, names both iOS formats).
SNIFFERS: tuple[str, ...] = (
    "pinscan.policy._plist",
    "pinscan.policy.android",
    "pinscan.policy.chromium",
    "pinscan.policy.toml",
    "pinscan.policy.okhttp",
    "pinscan.policy.hpkp",
    "pinscan.policy.curl",
)


def _function(module: str, name: str) -> Callable[..., Any]:
    return getattr(importlib.import_module(module), name)


def detect(data: bytes, source: str) -> list[str]:
    """The formats ``data`` holds, by content. Raises :class:`PolicyError` when none."""
    for module in SNIFFERS:
        found = _function(module, "sniff")(data)
        if found:
            return list(found)
    raise PolicyError(
        source,
        "not a pin policy pinscan knows (Android XML, iOS/TrustKit plist or JSON, OkHttp "
        "source, HPKP header, curl --pinnedpubkey, Chromium JSON, pinscan TOML); "
        "say which it is with --policy-format (format= in Python)",
    )


def read(
    data: bytes, source: str, format: str | None = None, *, android_debug: bool = False
) -> list[Policy]:
    """Every policy in ``data``: one per format found, or the one ``format`` forces.
    ``android_debug`` reads Android's ``<debug-overrides>``, as a debuggable build does."""
    formats = [format] if format else detect(data, source)
    unknown = [name for name in formats if name not in READERS]
    if unknown:
        raise PolicyError(
            source, f"unknown policy format {unknown[0]!r} (one of: {', '.join(READERS)})"
        )
    policies = []
    for name in formats:
        reader = _function(*READERS[name])
        if android_debug and name == "android":
            reader = functools.partial(reader, debug=True)
        policies.append(reader(data, source))
    return policies


def write(suggestion: Suggestion, format: str) -> str:
    """Render ``suggestion`` as a complete policy file in ``format``."""
    if format not in WRITERS:
        raise ValueError(f"pinscan cannot write {format!r} (one of: {', '.join(WRITERS)})")
    return _function(*WRITERS[format])(suggestion)


__all__ = ["READERS", "SNIFFERS", "WRITERS", "detect", "read", "write"]
