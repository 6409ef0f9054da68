# SPDX-License-Identifier: Apache-2.0
"""iOS App Transport Security ``NSPinnedDomains`` and TrustKit (iOS) configurations.

Both live in an app's Info.plist (XML or binary); TrustKit configurations also come as JSON dumps
of the same dictionary. ATS is read as trustd reads it (apple-open-source/macos ``SecPolicy.c``
``parseNSPinnedDomains``): bad entries are skipped silently, lists of every matching entry are
united. TrustKit is read as ``parseTrustKitConfiguration`` (datatheorem/TrustKit
``parse_configuration.m``) reads it: any bad value throws at initialisation, so the whole file is
refused. :func:`trustkit_spki` reproduces TrustKit's own SPKI hashing, which rebuilds the SPKI
from the raw key and a hard-coded header instead of hashing the certificate's bytes.

``plistlib`` is safe against entity expansion: its expat handler rejects every entity
declaration (so no billion laughs) and expat never fetches external entities.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import plistlib
import re
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, unescape

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pinscan.errors import InputError, PolicyError
from pinscan.keys import spki_der
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
    Suggestion,
    normalize_host,
    utc_midnight,
)

# ---------------------------------------------------------------------------------------------
# Loading: XML / binary plist or JSON, with a line index for locations.


@dataclass(frozen=True)
class _Doc:
    root: Any
    kind: str
    """``xml``, ``binary`` or ``json``."""
    index: _LineIndex | None


class _LineIndex:
    """Where each key or string value appears, to give rules a line without a second parser.

    Values are found by text, first occurrence at or after the parent's line: plistlib and json
    keep document order, so this lands on the right element for every file a human would write.
    """

    _XML = re.compile(r"<(key|string)>([^<]*)</\1>")
    _JSON = re.compile(r'"((?:[^"\\\n]|\\.)*)"')

    def __init__(self, text: str, kind: str) -> None:
        self._lines: dict[str, list[int]] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if kind == "xml":
                for match in self._XML.finditer(line):
                    value = unescape(match.group(2), {"&quot;": '"', "&apos;": "'"})
                    self._lines.setdefault(value, []).append(number)
            else:
                for match in self._JSON.finditer(line):
                    try:
                        value = json.loads(f'"{match.group(1)}"')
                    except ValueError:
                        continue
                    self._lines.setdefault(value, []).append(number)

    def find(self, value: object, after: int | None) -> int | None:
        """The first line at or after ``after`` holding ``value``, else ``after``."""
        lines = self._lines.get(value) if isinstance(value, str) else None
        if not lines:
            return after
        i = bisect_left(lines, after or 1)
        return lines[i] if i < len(lines) else after


def _find(doc: _Doc, value: object, after: int | None) -> int | None:
    return doc.index.find(value, after) if doc.index else None


def _text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _load(data: bytes, source: str) -> _Doc:
    """The plist or JSON object in ``data``; :class:`PolicyError` when it is neither."""
    if data.startswith(b"bplist"):
        try:
            root = plistlib.loads(data, fmt=plistlib.FMT_BINARY)
        # plistlib raises anything from struct.error to RecursionError on hostile input.
        except Exception as exc:
            raise PolicyError(source, f"not a readable binary plist: {exc}") from None
        return _Doc(root, "binary", None)
    text = _text(data)
    if text.lstrip().startswith(("{", "[")):
        try:
            root = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(source, f"not readable JSON: {exc}") from None
        return _Doc(root, "json", _LineIndex(text, "json"))
    try:
        root = plistlib.loads(data, fmt=plistlib.FMT_XML)
    except Exception as exc:  # expat errors, InvalidFileException, bad <integer>/<date>/<data>
        line = getattr(exc, "lineno", None)
        raise PolicyError(source, f"not a readable XML plist: {exc}", line) from None
    return _Doc(root, "xml", _LineIndex(text, "xml"))


# ---------------------------------------------------------------------------------------------
# Sniffing.

_TOKENS = (b"NSPinnedDomains", b"TSKPinnedDomains", b"TSKConfiguration")


def sniff(data: bytes) -> list[str]:
    """``ios`` and/or ``trustkit`` when ``data`` is a plist or JSON holding either; never raises.

    A substring test comes first so that files of other formats cost no parse.
    """
    if not any(token in data for token in _TOKENS):
        return []
    try:
        doc = _load(data, "")
    except PolicyError:
        return []
    found = []
    if isinstance(_ats_dict(doc.root), dict):
        found.append("ios")
    if _trustkit_config(doc) is not None:
        found.append("trustkit")
    return found


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
    doc: _Doc, key: str, entry: object, line: int | None, source: str, warn: _Warn
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
            _find(doc, "NSIncludesSubdomains", line),
            f"{key}: NSIncludesSubdomains is not a boolean: ATS honours only <true/>, "
            "so subdomains are not covered",
        )
    pin_sets = []
    for name, position in _IDENTITIES:
        if name not in entry:
            continue
        list_line = _find(doc, name, line)
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
            found = _find(doc, spki, cursor)
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


class _Warn:
    """Collects :class:`Diagnostic` of one file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Diagnostic] = []

    def __call__(self, line: int | None, message: str) -> None:
        self.items.append(Diagnostic(Location(self.source, line), message))


def parse_ats(data: bytes, source: str) -> Policy:
    """The ``NSPinnedDomains`` of an Info.plist (XML, binary or a JSON dump) as trustd reads it."""
    doc = _load(data, source)
    warn = _Warn(source)
    ats_line = _find(doc, "NSAppTransportSecurity", 1)
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
        cursor = _find(doc, "NSPinnedDomains", ats_line)
        for key, entry in pinned.items():
            cursor = _find(doc, key, cursor)
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


# ---------------------------------------------------------------------------------------------
# TrustKit.

_PINNED = "TSKPinnedDomains"
_HASHES = "TSKPublicKeyHashes"
_ENFORCE = "TSKEnforcePinning"
_INCLUDE = "TSKIncludeSubdomains"
_EXPIRES = "TSKExpirationDate"
_REPORT_URIS = "TSKReportUris"
_DISABLE_DEFAULT_REPORT = "TSKDisableDefaultReportUri"
_EXCLUDE = "kSKExcludeSubdomainFromParentPolicy"
"""The string TrustKit's ``kTSKExcludeSubdomainFromParentPolicy`` really holds (a typo)."""

# The Objective-C constant names people dump in JSON, mapped to the strings TrustKit reads.
_CONSTANTS = {
    "kTSKSwizzleNetworkDelegates": "TSKSwizzleNetworkDelegates",
    "kTSKPinnedDomains": _PINNED,
    "kTSKIgnorePinningForUserDefinedTrustAnchors": "TSKIgnorePinningForUserDefinedTrustAnchors",
    "kTSKPublicKeyHashes": _HASHES,
    "kTSKEnforcePinning": _ENFORCE,
    "kTSKExcludeSubdomainFromParentPolicy": _EXCLUDE,
    "kTSKIncludeSubdomains": _INCLUDE,
    "kTSKPublicKeyAlgorithms": "TSKPublicKeyAlgorithms",
    "kTSKReportUris": _REPORT_URIS,
    "kTSKDisableDefaultReportUri": _DISABLE_DEFAULT_REPORT,
    "kTSKExpirationDate": _EXPIRES,
    "kTSKAdditionalTrustAnchors": "TSKAdditionalTrustAnchors",
}

_TRUSTKIT_NOTES = (
    "TrustKit (iOS) 3.x: any pin of the evaluated chain passes; it hashes a SPKI rebuilt from "
    "the raw key (RSA 2048/3072/4096, EC P-256/P-384 only) and blocks the connection, even when "
    "not enforcing, on a key it cannot hash (see trustkit_spki).",
    "TrustKit matches the exact host against the dictionary keys case-sensitively; pinscan "
    "lowercases both.",
    "TrustKit's includeSubdomains test also matches names that merely end with the key "
    "(notgood.com for good.com) and takes the first matching parent in dictionary order; pinscan "
    "evaluates label-boundary matches, most specific first.",
    "TSKExpirationDate is 00:00 UTC of that day; after it the domain is not pinned (no reports).",
    "macOS only: chains anchored at user-installed roots skip pinning unless "
    "TSKIgnorePinningForUserDefinedTrustAnchors is false.",
)


class _ConfigError(Exception):
    """What TrustKit's ``NSException`` at initialisation would say."""


def _rename(value: object) -> object:
    if not isinstance(value, dict):
        return value
    return {_CONSTANTS.get(k, k) if isinstance(k, str) else k: v for k, v in value.items()}


def _trustkit_config(doc: _Doc) -> object | None:
    """The TrustKit dictionary: ``TSKConfiguration`` of a plist; in JSON that key or the root
    itself when it holds the pinned domains (constant names renamed to TrustKit's strings)."""
    root = doc.root
    if not isinstance(root, dict):
        return None
    if "TSKConfiguration" in root:
        config = root["TSKConfiguration"]
    elif doc.kind == "json" and ("TSKPinnedDomains" in root or "kTSKPinnedDomains" in root):
        config = root
    else:
        return None
    if doc.kind != "json":
        return config
    config = _rename(config)
    if isinstance(config, dict) and isinstance(config.get(_PINNED), dict):
        config[_PINNED] = {k: _rename(v) for k, v in config[_PINNED].items()}
    return config


def _objc_bool(value: object, what: str) -> bool:
    """``[value boolValue]``: NSNumber as C truth, NSString by its first significant character
    (``Y``, ``T`` or a non-zero digit); anything else raises."""
    if isinstance(value, bool | int | float):
        return bool(value)
    if isinstance(value, str):
        text = value.lstrip()
        text = (text[1:] if text[:1] in ("+", "-") else text).lstrip("0")
        return bool(text) and text[0] in "YyTt123456789"
    raise _ConfigError(f"{what} is a {type(value).__name__}, not a boolean (no boolValue)")


# -- public suffixes ---------------------------------------------------------------------------

_PSL_PATHS = (
    Path("/usr/share/publicsuffix/public_suffix_list.dat"),
    Path("/usr/share/publicsuffix/effective_tld_names.dat"),
)
# Used only without a system public suffix list: common suffixes where includeSubdomains throws.
_FALLBACK_SUFFIXES = frozenset(
    {
        *("co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "com.au", "net.au"),
        *("org.au", "edu.au", "gov.au", "co.nz", "org.nz", "co.jp", "ne.jp", "or.jp", "ac.jp"),
        *("co.kr", "or.kr", "com.br", "com.cn", "com.hk", "com.sg", "com.tw", "com.mx", "co.in"),
        *("co.za", "com.tr", "com.ar", "appspot.com", "github.io", "herokuapp.com"),
        *("blogspot.com", "cloudfront.net", "azurewebsites.net", "firebaseapp.com", "web.app"),
        *("pages.dev", "vercel.app", "netlify.app", "s3.amazonaws.com"),
    }
)


@dataclass(frozen=True)
class _Suffixes:
    rules: frozenset[str]
    wildcards: frozenset[str]
    exceptions: frozenset[str]
    complete: bool
    """True when read from the system list: an unknown TLD then has no registry (TrustKit
    refuses such a domain); the built-in fallback cannot tell."""


@functools.cache
def _suffixes() -> _Suffixes:
    """The public suffix list TrustKit's ``domain_registry`` is built from (ICANN and private
    sections), read from the system copy (Debian ``publicsuffix``) when there is one."""
    for path in _PSL_PATHS:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        rules, wildcards, exceptions = set(), set(), set()
        for raw in text.splitlines():
            line = raw.strip().split(maxsplit=1)[0] if raw.strip() else ""
            if not line or line.startswith("//"):
                continue
            if not line.isascii():
                marker = "!" if line.startswith("!") else "*." if line.startswith("*.") else ""
                try:
                    line = marker + line[len(marker) :].encode("idna").decode()
                except UnicodeError:
                    continue
            if line.startswith("!"):
                exceptions.add(line[1:].lower())
            elif line.startswith("*."):
                wildcards.add(line[2:].lower())
            else:
                rules.add(line.lower())
        return _Suffixes(frozenset(rules), frozenset(wildcards), frozenset(exceptions), True)
    return _Suffixes(_FALLBACK_SUFFIXES, frozenset(), frozenset(), False)


def _registry_length(name: str) -> int:
    """``GetRegistryLength``: the length of ``name``'s public suffix, 0 when it has none it
    knows (an unknown TLD, an IP address, non-ASCII or over 255 characters)."""
    if not name.isascii() or len(name) > 255:
        return 0
    host = name.lower().strip(".")
    labels = host.split(".")
    if not host or "" in labels:
        return 0
    psl = _suffixes()
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in psl.exceptions:
            return len(candidate) - len(labels[i]) - 1
        if candidate in psl.rules or ".".join(labels[i + 1 :]) in psl.wildcards:
            return len(candidate)
    return 0 if psl.complete else len(labels[-1])


def _is_subdomain(domain: str, name: str) -> bool:
    """TrustKit's ``isSubdomain``: same registry length, and ``name`` without its suffix ends
    with ``domain`` without its suffix (no label boundary)."""
    length = _registry_length(domain)
    if length == 0 or _registry_length(name) != length:
        return False
    stem = domain[: len(domain) - length - 1]
    return bool(stem) and name[: len(name) - length - 1].endswith(stem)


# -- parsing -----------------------------------------------------------------------------------


def _expiry(value: object, key: str, line: int | None, warn: _Warn) -> dt.datetime | None:
    if not isinstance(value, str):
        raise _ConfigError(f"{key}: {_EXPIRES} is not a string")
    match = re.fullmatch(r"(\d{1,4})-(\d{1,2})-(\d{1,2})", value)
    try:
        if match:
            return utc_midnight(dt.date(*(int(part) for part in match.groups())))
    except ValueError:
        pass
    warn(
        line,
        f"{key}: {_EXPIRES} {value!r} is not yyyy-MM-dd: TrustKit gets nil and the pins "
        "never expire",
    )
    return None


def _trustkit_pins(
    value: object, key: str, doc: _Doc, line: int | None, source: str
) -> tuple[Pin, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _ConfigError(f"{key}: {_HASHES} is not an array")
    pins: dict[str, Pin] = {}
    cursor = line
    for item in value:
        if not isinstance(item, str):
            raise _ConfigError(f"{key}: a {_HASHES} entry is not a string")
        found = _find(doc, item, cursor)
        cursor = found + 1 if found else cursor
        try:
            pin = Pin.parse("sha256", item, location=Location(source, found))
            size = len(base64.b64decode(pin.digest))
        except ValueError:
            size = 0
        if size != 32:
            raise _ConfigError(
                f"TrustKit was initialized with an invalid Pin {item} for domain "
                f"{key} (it must be the base64 of 32 bytes)"
            )
        pins.setdefault(pin.digest, pin)  # an NSSet: duplicates count once
    return tuple(pins.values())


def _trustkit_rule(
    key: str, policy: object, doc: _Doc, line: int | None, source: str, warn: _Warn
) -> Rule:
    """One ``TSKPinnedDomains`` entry; raises :class:`_ConfigError` where TrustKit throws."""
    location = Location(source, line)
    host = normalize_host(key)
    if _registry_length(key) == 0:
        raise _ConfigError(
            f"TrustKit was initialized with an invalid domain {key} (no known public suffix)"
        )
    if key != host:
        warn(
            line,
            f"{key!r}: TrustKit matches this key case-sensitively and as written; "
            f"pinscan reads it as {host}",
        )
    if not isinstance(policy, dict):
        raise _ConfigError(f"{key}: the domain's policy is not a dictionary")
    exclude = policy.get(_EXCLUDE)
    if exclude is not None and _objc_bool(exclude, f"{key}: {_EXCLUDE}"):
        if len(policy) > 1:
            raise _ConfigError(
                f"TrustKit was initialized with TSKExcludeSubdomainFromParentPolicy "
                f"for domain {key} but detected additional configuration keys"
            )
        return Rule(host, Match.EXACT, (), location, exclude=True, pattern=key)
    if (
        "TSKExcludeSubdomainFromParentPolicy" in policy
        or "kTSKExcludeSubdomainFromParentPolicy" in (policy)
    ):
        warn(
            line,
            f"{key}: TrustKit reads the exclusion only under the literal key "
            f"{_EXCLUDE!r} (sic); this spelling is ignored",
        )
    include = policy.get(_INCLUDE)
    subdomains = include is not None and _objc_bool(include, f"{key}: {_INCLUDE}")
    if subdomains and _registry_length(key) == len(key):
        raise _ConfigError(
            f"TrustKit was initialized with includeSubdomains for a domain suffix {key}"
        )
    expires = None
    if _EXPIRES in policy:
        expires = _expiry(policy[_EXPIRES], key, _find(doc, _EXPIRES, line), warn)
    enforce = _objc_bool(policy.get(_ENFORCE, True), f"{key}: {_ENFORCE}")
    if _DISABLE_DEFAULT_REPORT in policy:
        _objc_bool(policy[_DISABLE_DEFAULT_REPORT], f"{key}: {_DISABLE_DEFAULT_REPORT}")
    uris = policy.get(_REPORT_URIS)
    if uris is not None and not (isinstance(uris, list) and all(isinstance(u, str) for u in uris)):
        raise _ConfigError(
            f"TrustKit was initialized with an invalid value for {_REPORT_URIS} for domain {key}"
        )
    if "TSKPublicKeyAlgorithms" in policy:
        warn(line, f"{key}: TSKPublicKeyAlgorithms is ignored by TrustKit 1.6 and later")
    pins = _trustkit_pins(policy.get(_HASHES), key, doc, _find(doc, _HASHES, line), source)
    required = 2 if enforce else 1
    rule = Rule(
        host,
        Match.SUBDOMAINS if subdomains else Match.EXACT,
        (PinSet(pins),),
        location,
        expires=expires,
        enforce=enforce,
        pattern=key,
    )
    if len(pins) < required:
        message = (
            f"TrustKit was initialized with less than {required} pins (ie. no backup pins) for "
            f"domain {key}" + (" (TSKEnforcePinning is on)" if enforce else "")
        )
        return _with_error(rule, message)
    return rule


def _with_error(rule: Rule, message: str) -> Rule:
    return Rule(
        rule.host,
        rule.match,
        rule.pin_sets,
        rule.location,
        expires=rule.expires,
        enforce=rule.enforce,
        exclude=rule.exclude,
        pattern=rule.pattern,
        error=message,
    )


def parse_trustkit(data: bytes, source: str) -> Policy:
    """A TrustKit (iOS) configuration as ``parseTrustKitConfiguration`` reads it."""
    doc = _load(data, source)
    warn = _Warn(source)
    config = _trustkit_config(doc)
    config_line = _find(doc, "TSKConfiguration", 1)
    rules: list[Rule] = []
    error: tuple[str, int | None] | None = None
    notes = list(_TRUSTKIT_NOTES)
    if not _suffixes().complete:
        notes.append(
            "No system public suffix list found: only common suffixes are checked for "
            "TrustKit's public-suffix rules."
        )

    def fail(message: str, line: int | None) -> None:
        nonlocal error
        error = error or (message, line)

    domains = config.get(_PINNED) if isinstance(config, dict) else None
    if config is None:
        warn(config_line, "no TSKConfiguration: TrustKit is not configured by this file")
    elif not isinstance(domains, dict) or not domains:
        fail(
            "TrustKit was initialized with no pinned domains (TSKConfiguration must hold a "
            "non-empty TSKPinnedDomains dictionary)",
            config_line,
        )
    else:
        cursor = _find(doc, _PINNED, config_line)
        for key, policy in domains.items():
            cursor = _find(doc, key, cursor)
            try:
                rule = _trustkit_rule(str(key), policy, doc, cursor, source, warn)
            except _ConfigError as exc:
                fail(str(exc), cursor)
                host = normalize_host(str(key))
                # The refused entry still says which hosts the app meant to pin: they error.
                wide = isinstance(policy, dict) and policy.get(_INCLUDE) is True
                match = Match.SUBDOMAINS if wide else Match.EXACT
                rule = _with_error(
                    Rule(host, match, (), Location(source, cursor), pattern=str(key)), str(exc)
                )
            if rule.error:
                fail(rule.error, cursor)
            rules.append(rule)
        parents = [r.pattern for r in rules if r.match is Match.SUBDOMAINS]
        for i, rule in enumerate(rules):
            if rule.exclude and not any(_is_subdomain(p, "a" + rule.pattern) for p in parents):
                message = (
                    f"TrustKit was initialized with TSKExcludeSubdomainFromParentPolicy for "
                    f"domain {rule.pattern} but could not find a policy for a parent domain"
                )
                rules[i] = _with_error(rule, message)
                fail(message, rule.location.line)
        if any(isinstance(p, dict) and p.get(_REPORT_URIS) for p in domains.values()):
            notes.append(
                "Pin failures are reported to the TSKReportUris (and TrustKit's default "
                "URI unless TSKDisableDefaultReportUri)."
            )
    return Policy(
        name=source,
        format="trustkit",
        rules=tuple(rules),
        combine=Combine.MOST_SPECIFIC,
        chain=ChainSource.VERIFIED,
        error=error[0] if error else None,
        error_location=Location(source, error[1]) if error else None,
        warnings=tuple(warn.items),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------
# TrustKit's SPKI hash.

# TSKSPKIHashCache.m: the header it prepends to SecKeyCopyExternalRepresentation's bytes.
_RSA_HEADERS = {
    2048: bytes.fromhex("30820122300d06092a864886f70d01010105000382010f00"),
    3072: bytes.fromhex("308201a2300d06092a864886f70d01010105000382018f00"),
    4096: bytes.fromhex("30820222300d06092a864886f70d01010105000382020f00"),
}
_EC_HEADERS = {
    "secp256r1": bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200"),
    "secp384r1": bytes.fromhex("3076301006072a8648ce3d020106052b81040022036200"),
}
_OID_RSA = bytes.fromhex("2a864886f70d010101")
_OID_RSA_PSS = bytes.fromhex("2a864886f70d01010a")
_OID_EC = bytes.fromhex("2a8648ce3d0201")
_OID_NAMES = {
    bytes.fromhex("2b6570"): "Ed25519",
    bytes.fromhex("2b6571"): "Ed448",
    bytes.fromhex("2a8648ce380401"): "DSA",
    _OID_RSA_PSS: "RSASSA-PSS",
}
_SUPPORTED = "TrustKit hashes only RSA 2048/3072/4096 and EC P-256/P-384 keys"
_BLOCKS = "it cannot hash this key and blocks the connection, even with TSKEnforcePinning off"


def _der(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """The content span of the DER element of ``tag`` at ``pos``."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError("unexpected DER")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return pos, pos + length


def _spki_parts(spki: bytes) -> tuple[bytes, bytes, bytes]:
    """(algorithm OID, its parameters as DER, the key bit string's bytes) of a SPKI."""
    start, _ = _der(spki, 0, 0x30)
    alg_start, alg_end = _der(spki, start, 0x30)
    oid_start, oid_end = _der(spki, alg_start, 0x06)
    bits_start, bits_end = _der(spki, alg_end, 0x03)
    return spki[oid_start:oid_end], spki[oid_end:alg_end], spki[bits_start + 1 : bits_end]


def trustkit_spki(cert_der: bytes) -> tuple[str | None, str | None]:
    """The pin TrustKit (iOS) computes for this certificate's key, and why it is a problem.

    TrustKit hashes a fixed ASN.1 header plus ``SecKeyCopyExternalRepresentation`` (PKCS#1 for
    RSA, the uncompressed point for EC), not the certificate's SPKI bytes. Returns
    ``(pin, None)`` when that equals the real SPKI pin, ``(pin, reason)`` when it differs (a pin
    computed the standard way never matches), and ``(None, reason)`` when TrustKit cannot hash
    the key at all: it then blocks every connection whose chain holds the certificate.
    """
    try:
        spki = spki_der(cert_der)
        oid, params, key_bits = _spki_parts(spki)
    except (InputError, ValueError) as exc:
        return None, f"pinscan cannot read this certificate's key ({exc})"
    real = hashlib.sha256(spki).digest()
    if oid == _OID_RSA:
        try:
            key = serialization.load_der_public_key(spki)
        except (ValueError, TypeError) as exc:
            return None, f"Apple cannot read this RSA key ({exc}): {_BLOCKS}"
        if not isinstance(key, rsa.RSAPublicKey):
            return None, f"Apple cannot read this RSA key: {_BLOCKS}"
        bits = key.public_numbers().n.bit_length()
        if bits not in _RSA_HEADERS:
            since = " (RSA-3072 only since TrustKit's June 2024 change)" if bits == 3072 else ""
            return None, f"RSA-{bits} key: {_SUPPORTED}{since}; {_BLOCKS}"
        external = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        computed = hashlib.sha256(_RSA_HEADERS[bits] + external).digest()
        exponent = key.public_numbers().e
        why = (
            f"RSA-{bits} key with public exponent {exponent}: TrustKit's fixed header assumes "
            "the length of e=65537"
            if exponent != 65537
            else "the certificate's SPKI is not the canonical rsaEncryption encoding TrustKit "
            "rebuilds (e.g. no NULL parameters)"
        )
    elif oid == _OID_EC:
        curve_oid = _der(params, 0, 0x06) if params[:1] == b"\x06" else None
        if curve_oid is None:
            return (
                None,
                f"EC key with explicit curve parameters: Apple reads named curves only; {_BLOCKS}",
            )
        try:
            key = serialization.load_der_public_key(spki)
        except (ValueError, TypeError) as exc:
            return None, f"Apple cannot read this EC key ({exc}): {_BLOCKS}"
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return None, f"Apple cannot read this EC key: {_BLOCKS}"
        if key.curve.name not in _EC_HEADERS:
            return None, f"EC key on {key.curve.name}: {_SUPPORTED}; {_BLOCKS}"
        external = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        computed = hashlib.sha256(_EC_HEADERS[key.curve.name] + external).digest()
        why = (
            "the certificate holds a compressed EC point; TrustKit hashes the uncompressed one"
            if key_bits[:1] in (b"\x02", b"\x03")
            else "the certificate's SPKI is not the canonical encoding TrustKit rebuilds"
        )
    else:
        name = _OID_NAMES.get(oid, f"algorithm {oid.hex()}")
        extra = (
            ": Apple's SecCertificateCopyKey returns no key for it" if oid == _OID_RSA_PSS else ""
        )
        return None, f"{name} key{extra}; {_SUPPORTED}, so {_BLOCKS}"
    pin = base64.b64encode(computed).decode()
    if computed == real:
        return pin, None
    return pin, (
        f"{why}: TrustKit computes {pin}, the real SPKI pin is {base64.b64encode(real).decode()}"
    )


# ---------------------------------------------------------------------------------------------
# Writers.

_PLIST_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
    '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
    '<plist version="1.0">\n'
)


def _comment(text: str) -> str:
    """An XML comment: one line, no ``--`` inside, no ``-`` at the end."""
    body = " ".join(text.split())
    while "--" in body:
        body = body.replace("--", "- -")
    return f"<!-- {body.rstrip('-')} -->"


def _identities(pins: list[Any], depth: int) -> list[str]:
    tab = "\t" * depth
    lines = [f"{tab}<array>"]
    for suggested in pins:
        lines += [
            f"{tab}\t{_comment(f'{suggested.role}: {suggested.comment}')}",
            f"{tab}\t<dict>",
            f"{tab}\t\t<key>SPKI-SHA256-BASE64</key>",
            f"{tab}\t\t<string>{escape(suggested.pin.digest)}</string>",
            f"{tab}\t</dict>",
        ]
    return [*lines, f"{tab}</array>"]


def write_ats(suggestion: Suggestion) -> str:
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
    lines = [_PLIST_HEAD.rstrip("\n")]
    lines += [_comment(line) for line in suggestion.header]
    lines.append(
        _comment(
            "App Transport Security pinning (iOS 14+, macOS 11+): NSPinnedLeafIdentities match the "
            "leaf only, NSPinnedCAIdentities any certificate above it, the root included."
        )
    )
    if leaf_list and ca_list:
        lines.append(_comment("Both lists are present: ATS requires a match in EACH of them."))
    if suggestion.include_subdomains:
        lines.append(
            _comment(
                f"NSIncludesSubdomains covers {suggestion.domain} and the names exactly one label "
                "below it, not deeper."
            )
        )
    if suggestion.expires is not None:
        lines.append(
            _comment(
                f"ATS pins never expire: replace these pins before {suggestion.expires} (UTC)."
            )
        )
    if not suggestion.enforce:
        lines.append(_comment("ATS has no report-only mode: these pins are enforced."))
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


def write_trustkit(suggestion: Suggestion) -> str:
    """An Info.plist holding ``TSKConfiguration`` for the domain (TrustKit reads it at launch)."""
    distinct = {p.pin.digest for p in suggestion.pins}
    lines = [_PLIST_HEAD.rstrip("\n")]
    lines += [_comment(line) for line in suggestion.header]
    lines.append(
        _comment(
            "TrustKit (iOS): a chain passes when any pin matches any certificate of the evaluated "
            "chain. TrustKit refuses to start with fewer than 2 distinct pins when enforcing."
        )
    )
    if len(distinct) < (2 if suggestion.enforce else 1):
        lines.append(_comment("WARNING: too few distinct pins: TrustKit will throw at launch."))
    lines += [
        "<dict>",
        "\t<key>TSKConfiguration</key>",
        "\t<dict>",
        "\t\t<key>TSKSwizzleNetworkDelegates</key>",
        "\t\t<false/>",
        "\t\t<key>TSKPinnedDomains</key>",
        "\t\t<dict>",
        f"\t\t\t<key>{escape(suggestion.domain)}</key>",
        "\t\t\t<dict>",
    ]
    if suggestion.include_subdomains:
        lines += [
            "\t\t\t\t" + _comment("Covers every name below the domain, any depth."),
            "\t\t\t\t<key>TSKIncludeSubdomains</key>",
            "\t\t\t\t<true/>",
        ]
    lines += [
        "\t\t\t\t<key>TSKEnforcePinning</key>",
        "\t\t\t\t<true/>" if suggestion.enforce else "\t\t\t\t<false/>",
    ]
    if suggestion.expires is not None:
        lines += [
            "\t\t\t\t"
            + _comment("yyyy-MM-dd in UTC: TrustKit stops pinning at 00:00 UTC of this day."),
            "\t\t\t\t<key>TSKExpirationDate</key>",
            f"\t\t\t\t<string>{suggestion.expires.isoformat()}</string>",
        ]
    lines += ["\t\t\t\t<key>TSKPublicKeyHashes</key>", "\t\t\t\t<array>"]
    for suggested in suggestion.pins:
        lines += [
            "\t\t\t\t\t" + _comment(f"{suggested.role}: {suggested.comment}"),
            f"\t\t\t\t\t<string>{escape(suggested.pin.digest)}</string>",
        ]
    lines += [
        "\t\t\t\t</array>",
        "\t\t\t</dict>",
        "\t\t</dict>",
        "\t</dict>",
        "</dict>",
        "</plist>",
        "",
    ]
    return "\n".join(lines)


__all__ = ["parse_ats", "parse_trustkit", "sniff", "trustkit_spki", "write_ats", "write_trustkit"]
