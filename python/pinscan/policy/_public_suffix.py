# SPDX-License-Identifier: Apache-2.0
"""The public suffix list, as TrustKit's ``domain_registry`` uses it: :func:`registry_length`.

Read from the system copy (Debian ``publicsuffix``) when there is one; otherwise a built-in list
of common suffixes stands in, and :func:`complete` says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

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


def registry_length(name: str) -> int:
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


def complete() -> bool:
    """Whether the system list was found: an unknown TLD then has no registry."""
    return _suffixes().complete


__all__ = ["complete", "registry_length"]
