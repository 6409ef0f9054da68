# SPDX-License-Identifier: Apache-2.0
"""Which module reads and writes which format, and telling formats apart by content.

Each format's module has ``parse(data: bytes, source: str) -> Policy``, which raises
:class:`PolicyError` only for a file it cannot read at all, and ``sniff(data: bytes) -> bool``,
which says whether ``data`` holds that format and never raises; the formats `pinscan suggest`
writes also have ``write(suggestion) -> str``. An app artifact (``artifact``: an APK, AAB or IPA,
told by the zip magic) is the exception: it holds any number of policies, and :func:`read` takes
them all from :mod:`pinscan.policy.artifacts`. The modules are imported on first use
(importlib), for start-up time: importing :mod:`pinscan.policy` loads no XML, plist or TOML
parser.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pinscan.errors import PolicyError
from pinscan.policy.model import Policy, Suggestion

#: The start of a zip (an APK, AAB or IPA): a local file header, or an empty zip's end record.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# format -> its module, in the order users see the formats listed.
MODULES: dict[str, str] = {
    "android": "pinscan.policy.android",
    "trustkit-android": "pinscan.policy.trustkit_android",
    "ios": "pinscan.policy.ios",
    "trustkit": "pinscan.policy.trustkit",
    "okhttp": "pinscan.policy.okhttp",
    "hpkp": "pinscan.policy.hpkp",
    "curl": "pinscan.policy.curl",
    "chromium": "pinscan.policy.chromium",
    "toml": "pinscan.policy.toml",
    "node": "pinscan.policy.node",
    "ca-bundle": "pinscan.policy.ca_bundle",
    "artifact": "pinscan.policy.artifacts",
}

# The formats `pinscan suggest` writes.
WRITABLE: tuple[str, ...] = ("android", "ios", "trustkit", "okhttp", "hpkp", "curl", "toml")

# The order formats are sniffed in, most specific first. The formats of one group share a kind
# of file and one file may hold both (an Info.plist ATS pins and a TrustKit dictionary; an
# Android file a <trustkit-config>, read by Android and TrustKit-Android alike): every format of
# the first group that claims the data is read.
SNIFF_ORDER: tuple[tuple[str, ...], ...] = (
    ("ios", "trustkit"),
    ("android", "trustkit-android"),
    ("chromium",),
    ("toml",),
    ("okhttp",),
    ("node",),
    ("hpkp",),
    ("curl",),
    ("ca-bundle",),
)


def _module(format: str) -> ModuleType:
    return importlib.import_module(MODULES[format])


def sniff(data: bytes) -> list[str]:
    """The formats ``data`` holds, by content; empty when none. Never raises."""
    # An app artifact is a zip: its own readers tell what is inside (pinscan.policy.artifacts).
    if data[:4] in ZIP_MAGIC:
        return ["artifact"]
    for group in SNIFF_ORDER:
        found = [name for name in group if _module(name).sniff(data)]
        if found:
            return found
    return []


def detect(data: bytes, source: str) -> list[str]:
    """The formats ``data`` holds, by content. Raises :class:`PolicyError` when none."""
    found = sniff(data)
    if found:
        return found
    raise PolicyError(
        source,
        "not a pin policy pinscan knows (Android XML, iOS/TrustKit plist or JSON, OkHttp "
        "source, Node.js checkServerIdentity, HPKP header, curl --pinnedpubkey, Chromium JSON, "
        "pinscan TOML, a PEM bundle of CA certificates, an app artifact: APK, AAB, IPA); "
        "say which it is with --policy-format (format= in Python)",
    )


def read(
    data: bytes,
    source: str,
    format: str | None = None,
    *,
    android_debug: bool = False,
    hosts: tuple[str, ...] = (),
) -> list[Policy]:
    """Every policy in ``data``: one per format found, or the one ``format`` forces.
    ``android_debug`` reads Android's ``<debug-overrides>``, as a debuggable build does;
    ``hosts`` are the names a CA bundle (which names none) and Node.js pins whose file names no
    host cover."""
    formats = [format] if format else detect(data, source)
    unknown = [name for name in formats if name not in MODULES]
    if unknown:
        raise PolicyError(
            source, f"unknown policy format {unknown[0]!r} (one of: {', '.join(MODULES)})"
        )
    policies = []
    for name in formats:
        if name == "artifact":
            # Every policy the app holds, each named after its place in it; Android's
            # <debug-overrides> follow the app's own manifest, not android_debug.
            policies.extend(_module(name).read_artifact(data, source).policies)
        elif android_debug and name == "android":
            policies.append(_module(name).parse(data, source, debug=True))
        elif name in ("node", "ca-bundle"):
            policies.append(_module(name).parse(data, source, hosts))
        else:
            policies.append(_module(name).parse(data, source))
    return policies


def write(suggestion: Suggestion, format: str) -> str:
    """Render ``suggestion`` as a complete policy file in ``format``."""
    if format not in WRITABLE:
        raise ValueError(f"pinscan cannot write {format!r} (one of: {', '.join(WRITABLE)})")
    return _module(format).write(suggestion)


__all__ = ["MODULES", "SNIFF_ORDER", "WRITABLE", "detect", "read", "sniff", "write"]
