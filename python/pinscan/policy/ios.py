# SPDX-License-Identifier: Apache-2.0
"""iOS App Transport Security ``NSPinnedDomains``: reader and writer.

The pins live in an app's Info.plist (XML or binary, or a JSON dump of it; loading is
:mod:`._plist`'s). They are read as trustd reads them (apple-open-source/macos ``SecPolicy.c``
``parseNSPinnedDomains``): bad entries are skipped silently, lists of every matching entry are
united.
"""

from __future__ import annotations

import base64
from typing import Any
from xml.sax.saxutils import escape

from pinscan.policy._plist import PLIST_HEAD, Doc, Warn, comment, find, load, load_sniffed
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
    Suggestion,
    normalize_host,
)

# ---------------------------------------------------------------------------------------------
# App Transport Security.

_ATS_NOTE = (
    "iOS ATS NSPinnedDomains (iOS 14+/macOS 11+): pins apply in addition to default trust; "
    "the leaf list matches chain position 0 only and the CA list positions 1 and up (anchor "
    "included); with both lists both must match; NSIncludesSubdomains covers exactly one more "
    "label; the lists of every matching entry are united; no expiry; URLSession only "
    "(not WKWebView)."
)
_IDENTITIES = (("NSPinnedLeafIdentities", Position.LEAF), ("NSPinnedCAIdentities", Position.CA))
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _ats_dict(root: object) -> object:
    ats = root.get("NSAppTransportSecurity") if isinstance(root, dict) else None
    return ats.get("NSPinnedDomains") if isinstance(ats, dict) else None


def _apple_digest(value: str) -> tuple[str | None, str | None]:
    """What ``SecBase64Decode`` makes of ``value``: it skips every character outside the
    alphabet (``kSecB64_F_STOP_ON_NOTHING``) and decodes the rest. Returns the digest as
    canonical base64 (None when nothing decodes) and what is odd about it."""
    kept = "".join(ch for ch in value if ch in _B64_ALPHABET)
    if len(kept) % 4 == 1:
        kept = kept[:-1]
    raw = base64.b64decode(kept + "=" * (-len(kept) % 4)) if kept else b""
    if not raw:
        return None, "does not decode: ATS skips it"
    problem = None
    if kept != value.strip().rstrip("="):
        problem = "holds characters Apple's base64 decoder skips"
    if len(raw) != 32:
        problem = f"decodes to {len(raw)} bytes, not a SHA-256: ATS keeps it and it never matches"
    return base64.b64encode(raw).decode(), problem


def _ats_rule(
    doc: Doc, key: str, entry: object, line: int | None, source: str, warn: Warn
) -> Rule | None:
    if not isinstance(entry, dict):
        warn(line, f"{key!r}: not a dictionary: ATS skips it")
        return None
    host = normalize_host(key)
    if not host or key != key.strip() or key.endswith(".") or "*" in key:
        warn(
            line,
            f"{key!r}: ATS compares this key with the host name as written (case aside), "
            "without wildcards or a trailing dot: it never matches, the entry pins nothing",
        )
        return None
    includes = entry.get("NSIncludesSubdomains")
    if includes is not None and not isinstance(includes, bool):
        warn(
            find(doc, "NSIncludesSubdomains", line),
            f"{key}: NSIncludesSubdomains is not a boolean: ATS honours only <true/>, "
            "so subdomains are not covered",
        )
    pin_sets = []
    for name, position in _IDENTITIES:
        if name not in entry:
            continue
        list_line = find(doc, name, line)
        value = entry[name]
        pins: list[Pin] = []
        if not isinstance(value, list):
            warn(list_line, f"{key}: {name} is not an array: ATS reads it as an empty list")
            value = []
        cursor = list_line
        for item in value:
            spki = item.get("SPKI-SHA256-BASE64") if isinstance(item, dict) else None
            if not isinstance(spki, str):
                warn(
                    cursor,
                    f"{key}: an {name} entry is not a dictionary with a SPKI-SHA256-BASE64 "
                    "string: ATS skips it",
                )
                continue
            found = find(doc, spki, cursor)
            cursor = found + 1 if found else cursor
            digest, problem = _apple_digest(spki)
            if problem:
                warn(found, f"{key}: {spki!r} {problem}")
            if digest is not None:
                pins.append(Pin("sha256", digest, spki, Location(source, found)))
        if not pins:
            warn(
                list_line,
                f"{key}: {name} holds no usable pin: ATS still treats the host as pinned and "
                "refuses every connection to it",
            )
        pin_sets.append(PinSet(tuple(pins), position))
    if not pin_sets:
        warn(
            line,
            f"{key}: neither NSPinnedLeafIdentities nor NSPinnedCAIdentities: ATS does not pin it",
        )
        return None
    match = Match.ONE_LEVEL if includes is True else Match.EXACT
    return Rule(host, match, tuple(pin_sets), Location(source, line), pattern=key)


def parse(data: bytes, source: str) -> Policy:
    """The ``NSPinnedDomains`` of an Info.plist (XML, binary or a JSON dump) as trustd reads it."""
    doc = load(data, source)
    warn = Warn(source)
    ats_line = find(doc, "NSAppTransportSecurity", 1)
    pinned = _ats_dict(doc.root)
    rules: list[Rule] = []
    notes = [_ATS_NOTE]
    if not isinstance(pinned, dict):
        warn(
            ats_line,
            "no NSAppTransportSecurity dictionary with an NSPinnedDomains dictionary: "
            "ATS pins nothing",
        )
    else:
        cursor = find(doc, "NSPinnedDomains", ats_line)
        for key, entry in pinned.items():
            cursor = find(doc, key, cursor)
            rule = _ats_rule(doc, str(key), entry, cursor, source, warn)
            if rule is not None:
                rules.append(rule)
    if isinstance(doc.root, dict) and doc.root.get("SecTrustPinningRequired") is True:
        notes.append(
            "SecTrustPinningRequired is true: trustd drops the NSPinnedDomains pins and applies "
            "its own pinning requirement instead (SecPolicyReconcilePinningRequiredIfInfoSpecified)"
        )
    return Policy(
        name=source,
        format="ios",
        rules=tuple(rules),
        combine=Combine.UNION,
        chain=ChainSource.VERIFIED,
        warnings=tuple(warn.items),
        notes=tuple(notes),
    )


def sniff(data: bytes) -> bool:
    """Whether ``data`` is a plist or JSON with an ``NSAppTransportSecurity`` →
    ``NSPinnedDomains`` dictionary; never raises."""
    doc = load_sniffed(data, (b"NSPinnedDomains",))
    return doc is not None and isinstance(_ats_dict(doc.root), dict)


# ---------------------------------------------------------------------------------------------
# Writer.


def _identities(pins: list[Any], depth: int) -> list[str]:
    tab = "\t" * depth
    lines = [f"{tab}<array>"]
    for suggested in pins:
        lines += [
            f"{tab}\t{comment(f'{suggested.role}: {suggested.comment}')}",
            f"{tab}\t<dict>",
            f"{tab}\t\t<key>SPKI-SHA256-BASE64</key>",
            f"{tab}\t\t<string>{escape(suggested.pin.digest)}</string>",
            f"{tab}\t</dict>",
        ]
    return [*lines, f"{tab}</array>"]


def write(suggestion: Suggestion) -> str:
    """An Info.plist holding ``NSAppTransportSecurity`` → ``NSPinnedDomains`` for the domain.

    ATS has one list per position and ANDs the two. Pins all go in one list when the current
    chain's pins are all leaf keys (leaf list) or all CA keys (CA list); with both kinds, both
    lists are written (a chain must then match each) and backup keys go in both.
    """
    leaf = [p for p in suggestion.pins if p.role == "leaf"]
    ca = [p for p in suggestion.pins if p.role in ("intermediate", "root")]
    backup = [p for p in suggestion.pins if p.role not in ("leaf", "intermediate", "root")]
    leaf_list = leaf + backup if leaf else []
    ca_list = ca + backup if ca or not leaf else []
    lines = [PLIST_HEAD.rstrip("\n")]
    lines += [comment(line) for line in suggestion.header]
    lines.append(
        comment(
            "App Transport Security pinning (iOS 14+, macOS 11+): NSPinnedLeafIdentities match the "
            "leaf only, NSPinnedCAIdentities any certificate above it, the root included."
        )
    )
    if leaf_list and ca_list:
        lines.append(comment("Both lists are present: ATS requires a match in EACH of them."))
    if suggestion.include_subdomains:
        lines.append(
            comment(
                f"NSIncludesSubdomains covers {suggestion.domain} and the names exactly one label "
                "below it, not deeper."
            )
        )
    if suggestion.expires is not None:
        lines.append(
            comment(f"ATS pins never expire: replace these pins before {suggestion.expires} (UTC).")
        )
    if not suggestion.enforce:
        lines.append(comment("ATS has no report-only mode: these pins are enforced."))
    lines += [
        "<dict>",
        "\t<key>NSAppTransportSecurity</key>",
        "\t<dict>",
        "\t\t<key>NSPinnedDomains</key>",
        "\t\t<dict>",
        f"\t\t\t<key>{escape(suggestion.domain)}</key>",
        "\t\t\t<dict>",
        "\t\t\t\t<key>NSIncludesSubdomains</key>",
        "\t\t\t\t<true/>" if suggestion.include_subdomains else "\t\t\t\t<false/>",
    ]
    if leaf_list:
        lines += ["\t\t\t\t<key>NSPinnedLeafIdentities</key>", *_identities(leaf_list, 4)]
    if ca_list:
        lines += ["\t\t\t\t<key>NSPinnedCAIdentities</key>", *_identities(ca_list, 4)]
    lines += ["\t\t\t</dict>", "\t\t</dict>", "\t</dict>", "</dict>", "</plist>", ""]
    return "\n".join(lines)


__all__ = ["parse", "sniff", "write"]
