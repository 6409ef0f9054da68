# SPDX-License-Identifier: Apache-2.0
"""TrustKit (iOS) configurations: reader and writer, with TrustKit's public-suffix rules (the
list itself is :mod:`._public_suffix`'s).

The ``TSKConfiguration`` dictionary lives in an app's Info.plist (XML or binary) or comes as a
JSON dump (loading is :mod:`._plist`'s). It is read as ``parseTrustKitConfiguration``
(datatheorem/TrustKit ``parse_configuration.m``) reads it: any bad value throws at
initialisation, so the whole file is refused. TrustKit's own SPKI hashing is
:func:`.trustkit_hash.trustkit_spki`.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import replace
from xml.sax.saxutils import escape

from pinscan.policy._plist import PLIST_HEAD, Doc, Warn, comment, find, load, load_sniffed
from pinscan.policy._public_suffix import complete as public_suffix_complete
from pinscan.policy._public_suffix import registry_length
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Rule,
    Suggestion,
    normalize_host,
    utc_midnight,
)

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


def _trustkit_config(doc: Doc) -> object | None:
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


def _is_subdomain(domain: str, name: str) -> bool:
    """TrustKit's ``isSubdomain``: same registry length, and ``name`` without its suffix ends
    with ``domain`` without its suffix (no label boundary)."""
    length = registry_length(domain)
    if length == 0 or registry_length(name) != length:
        return False
    stem = domain[: len(domain) - length - 1]
    return bool(stem) and name[: len(name) - length - 1].endswith(stem)


# -- parsing -----------------------------------------------------------------------------------


def _expiry(value: object, key: str, line: int | None, warn: Warn) -> dt.datetime | None:
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
    value: object, key: str, doc: Doc, line: int | None, source: str
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
        found = find(doc, item, cursor)
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
    key: str, policy: object, doc: Doc, line: int | None, source: str, warn: Warn
) -> Rule:
    """One ``TSKPinnedDomains`` entry; raises :class:`_ConfigError` where TrustKit throws."""
    location = Location(source, line)
    host = normalize_host(key)
    if registry_length(key) == 0:
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
    if subdomains and registry_length(key) == len(key):
        raise _ConfigError(
            f"TrustKit was initialized with includeSubdomains for a domain suffix {key}"
        )
    expires = None
    if _EXPIRES in policy:
        expires = _expiry(policy[_EXPIRES], key, find(doc, _EXPIRES, line), warn)
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
    pins = _trustkit_pins(policy.get(_HASHES), key, doc, find(doc, _HASHES, line), source)
    required = 2 if enforce else 1
    error = None
    if len(pins) < required:
        error = (
            f"TrustKit was initialized with less than {required} pins (ie. no backup pins) for "
            f"domain {key}" + (" (TSKEnforcePinning is on)" if enforce else "")
        )
    return Rule(
        host,
        Match.SUBDOMAINS if subdomains else Match.EXACT,
        (PinSet(pins),),
        location,
        expires=expires,
        enforce=enforce,
        pattern=key,
        error=error,
    )


def parse(data: bytes, source: str) -> Policy:
    """A TrustKit (iOS) configuration as ``parseTrustKitConfiguration`` reads it."""
    doc = load(data, source)
    warn = Warn(source)
    config = _trustkit_config(doc)
    config_line = find(doc, "TSKConfiguration", 1)
    rules: list[Rule] = []
    error: tuple[str, int | None] | None = None
    notes = list(_TRUSTKIT_NOTES)
    if not public_suffix_complete():
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
        cursor = find(doc, _PINNED, config_line)
        for key, policy in domains.items():
            cursor = find(doc, key, cursor)
            try:
                rule = _trustkit_rule(str(key), policy, doc, cursor, source, warn)
            except _ConfigError as exc:
                fail(str(exc), cursor)
                host = normalize_host(str(key))
                # The refused entry still says which hosts the app meant to pin: they error.
                wide = isinstance(policy, dict) and policy.get(_INCLUDE) is True
                match = Match.SUBDOMAINS if wide else Match.EXACT
                rule = Rule(
                    host, match, (), Location(source, cursor), pattern=str(key), error=str(exc)
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
                rules[i] = replace(rule, error=message)
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


def sniff(data: bytes) -> bool:
    """Whether ``data`` is a plist or JSON holding a TrustKit configuration (valid or not);
    never raises."""
    doc = load_sniffed(data, (b"TSKPinnedDomains", b"TSKConfiguration"))
    return doc is not None and _trustkit_config(doc) is not None


# ---------------------------------------------------------------------------------------------
# Writer.


def write(suggestion: Suggestion) -> str:
    """An Info.plist holding ``TSKConfiguration`` for the domain (TrustKit reads it at launch)."""
    distinct = {p.pin.digest for p in suggestion.pins}
    lines = [PLIST_HEAD.rstrip("\n")]
    lines += [comment(line) for line in suggestion.header]
    lines.append(
        comment(
            "TrustKit (iOS): a chain passes when any pin matches any certificate of the evaluated "
            "chain. TrustKit refuses to start with fewer than 2 distinct pins when enforcing."
        )
    )
    if len(distinct) < (2 if suggestion.enforce else 1):
        lines.append(comment("WARNING: too few distinct pins: TrustKit will throw at launch."))
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
            "\t\t\t\t" + comment("Covers every name below the domain, any depth."),
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
            + comment("yyyy-MM-dd in UTC: TrustKit stops pinning at 00:00 UTC of this day."),
            "\t\t\t\t<key>TSKExpirationDate</key>",
            f"\t\t\t\t<string>{suggestion.expires.isoformat()}</string>",
        ]
    lines += ["\t\t\t\t<key>TSKPublicKeyHashes</key>", "\t\t\t\t<array>"]
    for suggested in suggestion.pins:
        lines += [
            "\t\t\t\t\t" + comment(f"{suggested.role}: {suggested.comment}"),
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


__all__ = ["parse", "sniff", "write"]
