# SPDX-License-Identifier: Apache-2.0
"""Every rotation scenario on every client format of the semantics table (docs/policies.md).

Each case is a real policy file in its client's own format, read by ``pinscan.load_policy``,
pinning an endpoint whose chain runs through the real Let's Encrypt hierarchy (tests/lechains.py)
in three eras: R10 under ISRG Root X1 on 2025-06-01 (siblings R11-R14), YR1 under Root YR
(cross-signed by ISRG Root X1) today (siblings YR2, YR3), and E5 under ISRG Root X2 on 2025-06-01,
whose chain still builds when X2 is distrusted (E5 is cross-signed by X1). Each file pins the leaf
key, the issuing intermediate, the root, or the spare key with the leaf, plus what each format
adds: report-only, expiry, refused files, carve-outs, overridePins, a veto list.

The expected outcome of each scenario is not read off pinscan: a small model of each client
(which positions a pin list may match, whether it checks the leaf alone, enforces, refuses the
file or has stopped pinning) is applied to the chain the scenario serves, written out below key
by key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import plistlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lechains
import polars as pl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import pinscan
from pinscan.dataset.writer import DatasetWriter
from pinscan.policy import formats
from pinscan.policy.evaluate import PLATFORM_STORES
from pinscan.records import TRUST_STORES, Endpoint
from pinscan.rotation import analyse
from pinscan.rotation.schema import KINDS

from fleet import pki

HOST = "api.example.com"
PARENT = "example.com"
SWITCH_FAMILY = "DigiCert Inc"
SWITCH = f"switch:{SWITCH_FAMILY}"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


# The eras ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Era:
    """An endpoint's chain as the platform stores build it (leaf first, CA names as lechains
    calls them) at ``as_of``, the intermediates Let's Encrypt may issue its next certificate
    from instead, and the CAs above the leaf once the root is distrusted (``None``: the chain
    builds to no other trusted root)."""

    name: str
    as_of: dt.datetime
    above: tuple[str, ...]
    siblings: tuple[str, ...]
    removed: tuple[str, ...] | None = None

    @property
    def issuer(self) -> str:
        return self.above[0]


# 2024-2025: R10-R14 in use, picked at random per certificate; R10 hangs from ISRG Root X1.
R_ERA = Era(
    "r10",
    dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    ("R10", "ISRG Root X1"),
    ("R11", "R12", "R13", "R14"),
)
# Generation Y: YR1/YR2 active, YR3 the backup; Root YR is in no store yet, so every platform
# builds through its cross-sign by ISRG Root X1.
Y_ERA = Era("gen-y", NOW, ("YR1", "Root YR by X1", "ISRG Root X1"), ("YR2", "YR3"))
# E5 (ECDSA) under ISRG Root X2, 2025: E5 also has a certificate signed by ISRG Root X1, so with
# X2 distrusted the chain still builds, to X1, and the pins decide.
E_ERA = Era(
    "e5-x2",
    dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    ("E5", "ISRG Root X2"),
    ("E6", "E7", "E8", "E9"),
    removed=("E5", "ISRG Root X1"),
)
ERAS = (R_ERA, Y_ERA, E_ERA)

#: Symbolic keys of a scenario chain: the served leaf key, a fresh one, the spare key, the CA
#: names of lechains, and the other family's keys (which no policy here pins).
LEAF, NEW, SPARE, OTHER = "leaf", "new leaf key", "spare", "another family's CA"


def scenario_chains(era: Era) -> dict[str, tuple[str, ...] | None]:
    """Each scenario's chain, leaf first, as a client of the platform builds it; ``None``: the
    chain builds to no root the store trusts (ISRG Root X1 distrusted: neither R10 nor Root YR
    has another path to a trusted root at that moment)."""
    chains: dict[str, tuple[str, ...] | None] = {
        "renew_same_key": (LEAF, *era.above),
        "renew_new_key": (NEW, *era.above),
        **{f"sibling:{s}": (NEW, s, *era.above[1:]) for s in era.siblings},
        SWITCH: (NEW, OTHER, OTHER),
        "backup_key": (SPARE, *era.above),
        "root_removed": None if era.removed is None else (LEAF, *era.removed),
    }
    return chains


# The client model -------------------------------------------------------------------------------

ANY, LEAF_POS, CA_POS, ANCHOR_POS = "any", "leaf", "ca", "anchor"


def _span(where: str, length: int) -> range:
    """The positions of a chain of ``length`` a pin list may match: ``anchor`` is 1 and up, or
    the leaf when it is the whole chain (Node.js ``ca``)."""
    start = {ANY: 0, LEAF_POS: 0, CA_POS: 1, ANCHOR_POS: 1 if length > 1 else 0}[where]
    return range(start, 1 if where == LEAF_POS else length)


@dataclass(frozen=True)
class Client:
    """What a client makes of its policy file, in the terms of its own code.

    ``sets``: pin lists that must all match, each at its positions (``any``; ``leaf``: position
    0; ``ca``: 1 and up, the anchor included). ``state``: ``enforce``; ``report`` (a mismatch
    is only reported); ``error`` (the client refuses the file: the app cannot connect);
    ``expired`` (the pin-set's date has passed) and ``unpinned`` (overridePins): nothing is
    checked. ``leaf_only``: the client looks at the presented leaf alone (curl). ``bad``: keys
    that fail the chain wherever they are.
    """

    sets: tuple[tuple[str, frozenset[str]], ...] = ()
    state: str = "enforce"
    leaf_only: bool = False
    bad: frozenset[str] = frozenset()

    def verdict(self, chain: Sequence[str]) -> str:
        if self.state == "error":
            return "error"
        if self.state in ("expired", "unpinned"):
            return self.state
        seen = chain[:1] if self.leaf_only else chain

        def matches(where: str, keys: frozenset[str]) -> bool:
            return any(seen[i] in keys for i in _span(where, len(seen)))

        passed = all(matches(w, k) for w, k in self.sets) and not self.bad & set(seen)
        if passed:
            return "pass"
        return "fail" if self.state == "enforce" else "report-only"

    def position(self, chain: Sequence[str]) -> int:
        """Where a passing chain matched: the match nearest the leaf among the lists' own
        nearest matches (what the verdict's ``matched_position`` reports)."""
        seen = chain[:1] if self.leaf_only else chain
        firsts = []
        for where, keys in self.sets:
            firsts.append(next(i for i in _span(where, len(seen)) if seen[i] in keys))
        return min(firsts)

    def outcome(self, chain: Sequence[str] | None) -> str:
        if chain is None:
            return "untrusted"  # the platform refuses the chain before any pin is looked at
        return {
            "pass": "survives",
            "report-only": "survives",
            "fail": "locks_out",
            "error": "locks_out",
            "expired": "unpinned",
            "unpinned": "unpinned",
        }[self.verdict(chain)]

    def headroom(
        self, chain: Sequence[str], not_after: dict[str, dt.datetime], expires: dt.datetime | None
    ) -> tuple[int, list[str], str | None]:
        """Today's margin: how many distinct pins match where their lists allow, at which
        places, and what ends a pass first (the matching certificate that lasts longest, or
        the pin-set's own expiry when that comes sooner)."""
        if self.state in ("error", "expired", "unpinned"):
            return 0, [], None
        seen = chain[:1] if self.leaf_only else chain
        found: set[tuple[int, str]] = set()
        for where, keys in self.sets:
            found |= {(i, seen[i]) for i in _span(where, len(seen)) if seen[i] in keys}

        def place(i: int) -> str:
            return "leaf" if i == 0 else "root" if i == len(chain) - 1 else "intermediate"

        places = sorted({place(i) for i, _ in found})
        carrier = None
        if self.verdict(chain) == "pass":
            i, key = max(found, key=lambda f: not_after[f[1]])
            carrier = place(i)
            if expires is not None and expires < not_after[key]:
                carrier = "pin-set"
        return len({key for _, key in found}), places, carrier


def pins(*names: str, where: str = ANY) -> tuple[str, frozenset[str]]:
    return (where, frozenset(names))


# Policy files -----------------------------------------------------------------------------------


@dataclass
class Keys:
    """The SHA-256 SPKI pins (and SHA-1, for OkHttp) of the symbolic keys in one era."""

    era: Era
    leaf: str
    spare: str
    sha1: dict[str, str] = field(default_factory=dict)

    def __call__(self, name: str) -> str:
        if name == LEAF:
            return self.leaf
        if name == SPARE:
            return self.spare
        if name == "issuer":
            return lechains.pin(self.era.issuer)
        if name == "root":
            return lechains.pin(self.era.above[-1])
        if name == "sibling":
            return lechains.pin(self.era.siblings[0])
        return lechains.pin(name)


def _spki_sha1(der: bytes) -> str:
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha1(spki).digest()).decode()


def android_xml(
    keys: Keys,
    names: Sequence[str],
    *,
    expiration: dt.date | None = None,
    override: bool = False,
    trustkit: str | None = None,
    duplicate: bool = False,
) -> str:
    """A network_security_config.xml pinning ``names`` for HOST and its subdomains' parent."""
    pin_lines = "\n".join(
        f'            <pin digest="SHA-256">{keys(n)}</pin> <!-- {n} -->' for n in names
    )
    expires = f' expiration="{expiration.isoformat()}"' if expiration else ""
    anchors = (
        '        <trust-anchors>\n            <certificates src="system" overridePins="true"/>\n'
        "        </trust-anchors>\n"
        if override
        else ""
    )
    tk = ""
    if trustkit == "enforce":
        tk = '        <trustkit-config enforcePinning="true" disableDefaultReportUri="true"/>\n'
    elif trustkit == "report":
        tk = (
            "        <trustkit-config>\n"
            "            <report-uri>https://reports.example.com/pins</report-uri>\n"
            "        </trustkit-config>\n"
        )
    again = f'        <domain includeSubdomains="true">{HOST}</domain>\n' if duplicate else ""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
    <base-config cleartextTrafficPermitted="false"/>
    <domain-config>
        <domain includeSubdomains="true">{HOST}</domain>
{again}{anchors}        <pin-set{expires}>
{pin_lines}
        </pin-set>
{tk}    </domain-config>
</network-security-config>
"""


def ios_plist(
    keys: Keys,
    *,
    leaf: Sequence[str] | None = None,
    ca: Sequence[str] | None = None,
    parent_ca: Sequence[str] | None = None,
) -> bytes:
    """An Info.plist whose ATS NSPinnedDomains pins HOST by leaf and/or CA identities, and
    ``parent_ca`` for its parent domain and the names one label below it."""

    def identities(names: Sequence[str]) -> list[dict[str, str]]:
        return [{"SPKI-SHA256-BASE64": keys(n)} for n in names]

    entry: dict[str, object] = {"NSIncludesSubdomains": False}
    if leaf is not None:
        entry["NSPinnedLeafIdentities"] = identities(leaf)
    if ca is not None:
        entry["NSPinnedCAIdentities"] = identities(ca)
    domains: dict[str, object] = {HOST: entry}
    if parent_ca is not None:
        domains[PARENT] = {
            "NSIncludesSubdomains": True,
            "NSPinnedCAIdentities": identities(parent_ca),
        }
    return plistlib.dumps(
        {
            "CFBundleIdentifier": "com.example.app",
            "NSAppTransportSecurity": {"NSPinnedDomains": domains},
        }
    )


def trustkit_plist(
    keys: Keys,
    names: Sequence[str],
    *,
    enforce: bool = True,
    expires: dt.date | None = None,
    carved_out: bool = False,
) -> bytes:
    """An Info.plist with a TrustKit TSKConfiguration for HOST; ``carved_out``: the pins are
    its parent's, for every name below it, and HOST is excluded from them."""
    domain: dict[str, object] = {
        "TSKEnforcePinning": enforce,
        "TSKIncludeSubdomains": carved_out,
        "TSKPublicKeyHashes": [keys(n) for n in names],
        "TSKReportUris": ["https://reports.example.com/trustkit"],
    }
    if expires is not None:
        domain["TSKExpirationDate"] = expires.isoformat()
    domains: dict[str, object] = {HOST: domain}
    if carved_out:
        domains = {PARENT: domain, HOST: {"kSKExcludeSubdomainFromParentPolicy": True}}
    return plistlib.dumps(
        {
            "CFBundleIdentifier": "com.example.app",
            "TSKConfiguration": {
                "TSKSwizzleNetworkDelegates": True,
                "TSKPinnedDomains": domains,
            },
        }
    )


def okhttp_kotlin(keys: Keys, adds: Sequence[tuple[str, str]]) -> str:
    """Kotlin that builds an OkHttp client with a CertificatePinner: ``(pattern, pin)`` adds,
    a pin given as a symbolic key (``sha256/``) or ``sha1:NAME``."""

    def value(name: str) -> str:
        if name.startswith("sha1:"):
            return f"sha1/{keys.sha1[name[5:]]}"
        return f"sha256/{keys(name)}"

    lines = "\n".join(f'        .add("{pattern}", "{value(n)}")' for pattern, n in adds)
    return f"""package com.example.net

import okhttp3.CertificatePinner
import okhttp3.OkHttpClient

object ApiClient {{
    private val pinner = CertificatePinner.Builder()
{lines}
        .build()

    val client: OkHttpClient = OkHttpClient.Builder()
        .certificatePinner(pinner)
        .build()
}}
"""


def hpkp_dump(
    keys: Keys, names: Sequence[str], *, report_only: bool = False, max_age: str | None = "5184000"
) -> str:
    """A saved HTTP response (``curl -sI``) carrying a Public-Key-Pins header from HOST."""
    header = "Public-Key-Pins-Report-Only" if report_only else "Public-Key-Pins"
    directives = [f'pin-sha256="{keys(n)}"' for n in names]
    if max_age is not None:
        directives.append(f"max-age={max_age}")
    directives.append('report-uri="https://reports.example.com/hpkp"')
    return (
        f"$ curl -sI https://{HOST}/\nHTTP/1.1 200 OK\nServer: nginx\n"
        f"{header}: {'; '.join(directives)}\nContent-Type: text/html\n"
    )


def curl_script(keys: Keys, names: Sequence[str]) -> str:
    value = ";".join(f"sha256//{keys(n)}" for n in names)
    return f"#!/bin/sh\nset -e\ncurl -fsS --pinnedpubkey '{value}' https://{HOST}/v1/health\n"


def chromium_files(
    directory: Path,
    keys: Keys,
    names: Sequence[str],
    *,
    bad: Sequence[str] = (),
    timestamp: dt.datetime,
) -> Path:
    """transport_security_state_static_pins.json and its .pins file, side by side."""
    directory.mkdir(parents=True, exist_ok=True)
    label = {n: "Key" + "".join(c for c in n.title() if c.isalnum()) for n in (*names, *bad)}
    pins_file = [f"# test keys\nPinsListTimestamp\n{int(timestamp.timestamp())}\n"]
    pins_file += [f"\n{label[n]}\nsha256/{keys(n)}\n" for n in dict.fromkeys([*names, *bad])]
    (directory / "transport_security_state_static.pins").write_text("".join(pins_file))
    doc = {
        "pinsets": [
            {
                "name": "example",
                "static_spki_hashes": [label[n] for n in names],
                "bad_static_spki_hashes": [label[n] for n in bad],
            }
        ],
        "entries": [{"name": HOST, "include_subdomains": True, "pins": "example"}],
    }
    path = directory / "transport_security_state_static_pins.json"
    path.write_text("// Pinned names, as Chromium lists them.\n" + json.dumps(doc, indent=2))
    return path


def toml_text(keys: Keys, body: str, *, chain: str = "verified") -> str:
    """pinscan's TOML: ``body`` is the [[pin-set]] keys, with ``{name}`` for a pin."""

    def pin(name: str) -> str:
        return f'"sha256/{keys(name)}"'

    filled = body.format_map({n: pin(n) for n in (LEAF, SPARE, "issuer", "root", "sibling")})
    return (
        f'combine = "most-specific"\nchain = "{chain}"\n\n[[pin-set]]\ndomain = "{HOST}"\n'
        f"{filled}\n"
    )


# The cases --------------------------------------------------------------------------------------

Writer = Callable[[Path, Keys, Era], Path]


@dataclass(frozen=True)
class Case:
    """One policy file (``write`` puts it in a directory and returns its path), the format it is
    read as, and the client's view of it (a function of the era: some states depend on dates)."""

    id: str
    format: str
    write: Writer
    client: Callable[[Era], Client]
    #: When the client stops enforcing the pins, where the file says so.
    expires: Callable[[Era], dt.datetime | None] = lambda era: None


def _text(name: str, render: Callable[[Keys, Era], str | bytes]) -> Writer:
    def write(directory: Path, keys: Keys, era: Era) -> Path:
        path = directory / name
        data = render(keys, era)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    return write


def _fixed(client: Client) -> Callable[[Era], Client]:
    return lambda era: client


def _past(era: Era) -> dt.date:
    return (era.as_of - dt.timedelta(days=30)).date()


def _future(era: Era) -> dt.date:
    return (era.as_of + dt.timedelta(days=365)).date()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


NSC = "network_security_config.xml"
EXPIRED = Client(state="expired")
UNPINNED = Client(state="unpinned")
ERROR = Client(state="error")
# The four pin-sets of the brief, as a client that may match any position sees them.
LEAF_ONLY = Client((pins(LEAF),))
ISSUER = Client((pins("issuer"),))
ROOT = Client((pins("root"),))
SPARE_LEAF = Client((pins(SPARE, LEAF),))


def _nsc(
    fmt: str,
    case: str,
    names: Sequence[str],
    client: Client,
    *,
    expiration: Callable[[Era], dt.date] | None = None,
    **options: bool | str,
) -> Case:
    """A network_security_config.xml read as ``fmt``: Android's view or TrustKit-Android's."""

    def render(keys: Keys, era: Era) -> str:
        day = expiration(era) if expiration else None
        return android_xml(keys, names, expiration=day, **options)  # type: ignore[arg-type]

    def expires(era: Era) -> dt.datetime | None:
        return _midnight(expiration(era)) if expiration else None

    return Case(f"{fmt}-{case}", fmt, _text(NSC, render), _fixed(client), expires)


def _android(case: str, names: Sequence[str], client: Client, **options: object) -> Case:
    return _nsc("android", case, names, client, **options)  # type: ignore[arg-type]


def _trustkit_android(case: str, names: Sequence[str], client: Client, **options: object) -> Case:
    return _nsc("trustkit-android", case, names, client, **options)  # type: ignore[arg-type]


def _ios(case: str, client: Client, **lists: Sequence[str]) -> Case:
    return Case(
        f"ios-{case}",
        "ios",
        _text("Info.plist", lambda k, e: ios_plist(k, **lists)),
        _fixed(client),
    )


def _trustkit(case: str, names: Sequence[str], client: Client, enforce: bool = True) -> Case:
    return Case(
        f"trustkit-{case}",
        "trustkit",
        _text("Info.plist", lambda k, e: trustkit_plist(k, names, enforce=enforce)),
        _fixed(client),
    )


def _okhttp(case: str, adds: Sequence[tuple[str, str]], client: Client) -> Case:
    return Case(
        f"okhttp-{case}",
        "okhttp",
        _text("ApiClient.kt", lambda k, e: okhttp_kotlin(k, adds)),
        _fixed(client),
    )


def _hpkp(case: str, names: Sequence[str], client: Client, **options: object) -> Case:
    return Case(
        f"hpkp-{case}",
        "hpkp",
        _text("headers.txt", lambda k, e: hpkp_dump(k, names, **options)),  # type: ignore[arg-type]
        _fixed(client),
    )


def _curl(case: str, names: Sequence[str], client: Client) -> Case:
    return Case(
        f"curl-{case}",
        "curl",
        _text("health.sh", lambda k, e: curl_script(k, names)),
        _fixed(client),
    )


def _curl_key_file(directory: Path, keys: Keys, era: Era) -> Path:
    key = pki.leaf(HOST).cert.public_key()
    (directory / "api.pub.pem").write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    path = directory / "health.sh"
    path.write_text(f"curl -fsS --pinnedpubkey api.pub.pem https://{HOST}/v1/health\n")
    return path


def _chromium(
    case: str,
    names: Sequence[str],
    client: Callable[[Era], Client],
    *,
    bad: Sequence[str] = (),
    age: dt.timedelta = dt.timedelta(days=10),
) -> Case:
    def write(directory: Path, keys: Keys, era: Era) -> Path:
        return chromium_files(
            directory / "chromium", keys, names, bad=bad, timestamp=era.as_of - age
        )

    # The list is enforced for 70 days from its timestamp.
    def expires(era: Era) -> dt.datetime:
        return era.as_of - age + dt.timedelta(days=70) - dt.timedelta(microseconds=1)

    return Case(f"chromium-{case}", "chromium", write, client, expires)


def _toml(case: str, body: str, client: Callable[[Era], Client], chain: str = "verified") -> Case:
    def render(keys: Keys, era: Era) -> str:
        text = body.replace("PAST", _past(era).isoformat()).replace(
            "FUTURE", _future(era).isoformat()
        )
        return toml_text(keys, text, chain=chain)

    def expires(era: Era) -> dt.datetime | None:
        return _midnight(_future(era)) if "FUTURE" in body else None

    return Case(f"toml-{case}", "toml", _text("pins.toml", render), client, expires)


def _ca_bundle(case: str, names: Sequence[str], client: Client) -> Case:
    """A PEM bundle of Let's Encrypt's CA certificates, as Node.js takes it in ``ca``."""

    def render(keys: Keys, era: Era) -> bytes:
        named = {"issuer": era.issuer, "root": era.above[-1]}
        ders = [lechains.der(named[name]) for name in names]
        return b"".join(x509.load_der_x509_certificate(d).public_bytes(_PEM) for d in ders)

    return Case(f"ca-bundle-{case}", "ca-bundle", _text("ca.pem", render), _fixed(client))


_PEM = serialization.Encoding.PEM


def _node(case: str, names: Sequence[str], client: Client, *, walk: bool) -> Case:
    """A Node.js checkServerIdentity callback holding SPKI pins: on the leaf alone, or on every
    certificate of the chain when it walks ``issuerCertificate``."""

    def render(keys: Keys, era: Era) -> str:
        pins = ", ".join(f"'{keys(name)}'" for name in names)
        check = (
            "for (let c = cert; c; c = c.issuerCertificate === c ? null : c.issuerCertificate) {\n"
            "      if (PINS.includes(spki(c))) return undefined;\n    }"
            if walk
            else "if (PINS.includes(spki(cert))) return undefined;"
        )
        return f"""const tls = require('node:tls');
const crypto = require('node:crypto');
const PINS = [{pins}];
const spki = (c) => crypto.createHash('sha256').update(c.pubkey).digest('base64');
module.exports.agentOptions = {{
  host: '{HOST}',
  checkServerIdentity(host, cert) {{
    const err = tls.checkServerIdentity(host, cert);
    if (err) return err;
    {check}
    return new Error('certificate pinning failure');
  }},
}};
"""

    return Case(f"node-{case}", "node", _text("client.js", render), _fixed(client))


CASES: tuple[Case, ...] = (
    # Android's Network Security Config: any position of the built chain, anchor included.
    _android("leaf", [LEAF], LEAF_ONLY),
    _android("issuer", ["issuer"], ISSUER, expiration=_future),
    _android("root", ["root"], ROOT),
    _android("spare-leaf", [SPARE, LEAF], SPARE_LEAF),
    # A pin-set past its expiration is not enforced: the app connects to anything trusted.
    _android("expired", [LEAF], EXPIRED, expiration=_past),
    # overridePins on the system anchors: a publicly trusted chain is never pin-checked.
    _android("override-pins", [LEAF], UNPINNED, override=True),
    # The same domain twice: Android refuses the whole file, the app cannot start its client.
    _android("duplicate-domain", ["root"], ERROR, duplicate=True),
    # TrustKit-Android: report-only unless enforcePinning, and two pins when enforcing.
    _trustkit_android("leaf-enforced", [LEAF], ERROR, trustkit="enforce"),
    _trustkit_android("leaf-report", [LEAF], Client((pins(LEAF),), "report"), trustkit="report"),
    _trustkit_android(
        "issuer-spare", ["issuer", SPARE], Client((pins("issuer", SPARE),)), trustkit="enforce"
    ),
    _trustkit_android(
        "root-spare", ["root", SPARE], Client((pins("root", SPARE),)), trustkit="enforce"
    ),
    _trustkit_android("spare-leaf", [SPARE, LEAF], SPARE_LEAF, trustkit="enforce"),
    _trustkit_android("expired", [SPARE, LEAF], EXPIRED, trustkit="enforce", expiration=_past),
    # iOS ATS: leaf identities match position 0 only, CA identities 1 and up (anchor included).
    _ios("leaf", Client((pins(LEAF, where=LEAF_POS),)), leaf=[LEAF]),
    _ios("issuer", Client((pins("issuer", where=CA_POS),)), ca=["issuer"]),
    _ios("root", Client((pins("root", where=CA_POS),)), ca=["root"]),
    _ios("spare-leaf", Client((pins(SPARE, LEAF, where=LEAF_POS),)), leaf=[SPARE, LEAF]),
    # The CA key among the leaf identities, the leaf key among the CA ones: never matched.
    _ios("issuer-as-leaf", Client((pins("issuer", where=LEAF_POS),)), leaf=["issuer"]),
    _ios("leaf-as-ca", Client((pins(LEAF, where=CA_POS),)), ca=[LEAF]),
    # Both lists: both must match.
    _ios(
        "leaf-and-ca",
        Client((pins(LEAF, SPARE, where=LEAF_POS), pins("issuer", where=CA_POS))),
        leaf=[LEAF, SPARE],
        ca=["issuer"],
    ),
    # An empty list keeps the host pinned and never matches.
    _ios("empty-ca", Client((pins(where=CA_POS),)), ca=[]),
    # The lists of every entry covering the name unite: the host's leaf list and its parent's
    # CA list (NSIncludesSubdomains: one more label) must both match.
    _ios(
        "union-with-parent",
        Client((pins(LEAF, SPARE, where=LEAF_POS), pins("issuer", where=CA_POS))),
        leaf=[LEAF, SPARE],
        parent_ca=["issuer"],
    ),
    # TrustKit (iOS): at least two pins when enforcing, else TrustKit throws at start-up.
    _trustkit("leaf-enforced", [LEAF], ERROR),
    _trustkit("leaf-report", [LEAF], Client((pins(LEAF),), "report"), enforce=False),
    _trustkit("issuer-spare", ["issuer", SPARE], Client((pins("issuer", SPARE),))),
    _trustkit("root-spare", ["root", SPARE], Client((pins("root", SPARE),))),
    _trustkit("spare-leaf", [SPARE, LEAF], SPARE_LEAF),
    # kSKExcludeSubdomainFromParentPolicy carves the host out of its parent's pins.
    Case(
        "trustkit-carved-out",
        "trustkit",
        _text("Info.plist", lambda k, e: trustkit_plist(k, ["root", SPARE], carved_out=True)),
        _fixed(UNPINNED),
    ),
    # TSKExpirationDate passed: TrustKit stops pinning the domain.
    Case(
        "trustkit-expired",
        "trustkit",
        _text(
            "Info.plist",
            lambda k, e: trustkit_plist(k, [SPARE, LEAF], expires=_past(e)),
        ),
        _fixed(EXPIRED),
    ),
    # OkHttp: the union of every matching pattern, any position of the cleaned chain.
    _okhttp("leaf", [(HOST, LEAF)], LEAF_ONLY),
    _okhttp("issuer", [(HOST, "issuer")], ISSUER),
    _okhttp("root", [(HOST, "root")], ROOT),
    _okhttp("spare-leaf", [(HOST, SPARE), (HOST, LEAF)], SPARE_LEAF),
    # `*.example.com` covers api.example.com too: its leaf pin and the exact root pin unite.
    _okhttp("union", [("*.example.com", LEAF), (HOST, "root")], Client((pins(LEAF, "root"),))),
    # `**.example.com`: the domain and any depth below it.
    _okhttp(
        "any-depth",
        [("**.example.com", "issuer"), ("**.example.com", SPARE)],
        Client((pins("issuer", SPARE),)),
    ),
    # sha1/ pins: OkHttp hashes each certificate of the chain both ways.
    _okhttp("sha1-root", [(HOST, "sha1:root")], ROOT),
    # HPKP: any position of the validated chain. max-age counts from each response that
    # carries the header, so it has no absolute end: a minute-long one is still in force.
    _hpkp("leaf", [LEAF], LEAF_ONLY),
    _hpkp("issuer", ["issuer"], ISSUER),
    _hpkp("root", ["root"], ROOT, max_age="60"),
    _hpkp("spare-leaf", [SPARE, LEAF], SPARE_LEAF),
    _hpkp("report-only", [LEAF], Client((pins(LEAF),), "report"), report_only=True),
    # A header without max-age: browsers reject it.
    _hpkp("no-max-age", [SPARE, LEAF], ERROR, max_age=None),
    # curl --pinnedpubkey: the presented leaf alone; a CA pin can never match.
    _curl("leaf", [LEAF], Client((pins(LEAF),), leaf_only=True)),
    _curl("issuer", ["issuer"], Client((pins("issuer"),), leaf_only=True)),
    _curl("root", ["root"], Client((pins("root"),), leaf_only=True)),
    _curl("spare-leaf", [SPARE, LEAF], Client((pins(SPARE, LEAF),), leaf_only=True)),
    # --pinnedpubkey FILE: the server's public key saved as PEM beside the script.
    Case("curl-key-file", "curl", _curl_key_file, _fixed(Client((pins(LEAF),), leaf_only=True))),
    # Chromium's static pins: any position, a veto list, and 70 days of life for the list.
    _chromium("leaf", [LEAF], _fixed(LEAF_ONLY)),
    _chromium("issuer", ["issuer"], _fixed(ISSUER)),
    _chromium("root", ["root"], _fixed(ROOT)),
    _chromium("spare-leaf", [SPARE, LEAF], _fixed(SPARE_LEAF)),
    _chromium(
        "root-bad-sibling",
        ["root"],
        lambda era: Client((pins("root"),), bad=frozenset({era.siblings[0]})),
        bad=["sibling"],
    ),
    _chromium("stale-list", ["root"], _fixed(EXPIRED), age=dt.timedelta(days=71)),
    # pinscan's TOML: every knob of the rule model, stated.
    _toml("leaf", "pins = [{leaf}]", _fixed(LEAF_ONLY)),
    _toml("issuer", "pins = [{issuer}]\nexpires = FUTURE", _fixed(ISSUER)),
    _toml("root", "include-subdomains = true\npins = [{root}]", _fixed(ROOT)),
    _toml("spare-leaf", "pins = [{spare}, {leaf}]", _fixed(SPARE_LEAF)),
    _toml(
        "leaf-chain-issuer",
        "pins = [{issuer}]",
        _fixed(Client((pins("issuer"),), leaf_only=True)),
        chain="leaf",
    ),
    _toml(
        "ca-positions-leaf",
        'pins = [{leaf}]\npositions = "ca"',
        _fixed(Client((pins(LEAF, where=CA_POS),))),
    ),
    _toml(
        "leaf-and-ca-pins",
        "leaf-pins = [{leaf}, {spare}]\nca-pins = [{issuer}]",
        _fixed(Client((pins(LEAF, SPARE, where=LEAF_POS), pins("issuer", where=CA_POS)))),
    ),
    _toml(
        "report-only", "pins = [{leaf}]\nenforce = false", _fixed(Client((pins(LEAF),), "report"))
    ),
    _toml("expired", "pins = [{leaf}]\nexpires = PAST", _fixed(EXPIRED)),
    _toml(
        "bad-sibling",
        "pins = [{root}]\nbad-pins = [{sibling}]",
        lambda era: Client((pins("root"),), bad=frozenset({era.siblings[0]})),
    ),
    _toml(
        "anchor-positions-leaf",
        'pins = [{leaf}]\npositions = "anchor"',
        _fixed(Client((pins(LEAF, where=ANCHOR_POS),))),
    ),
    # Node.js `ca`: the path must end at, or pass through, a certificate of the bundle.
    _ca_bundle("root", ["root"], Client((pins("root", where=ANCHOR_POS),))),
    _ca_bundle("issuer", ["issuer"], Client((pins("issuer", where=ANCHOR_POS),))),
    # Node.js checkServerIdentity: the leaf alone, or the chain when the callback walks it.
    _node("leaf", [LEAF, SPARE], Client((pins(LEAF, SPARE, where=LEAF_POS),)), walk=False),
    _node("issuer-as-leaf", ["issuer"], Client((pins("issuer", where=LEAF_POS),)), walk=False),
    _node("chain-issuer", ["issuer", SPARE], Client((pins("issuer", SPARE),)), walk=True),
)


def _symbolic(client: Client, era: Era) -> Client:
    """The client with its symbolic keys ("issuer", "root") named as the era's chain names them."""
    names = {"issuer": era.issuer, "root": era.above[-1], "sibling": era.siblings[0]}

    def rename(keys: frozenset[str]) -> frozenset[str]:
        return frozenset(names.get(k, k) for k in keys)

    return Client(
        tuple((where, rename(keys)) for where, keys in client.sets),
        client.state,
        client.leaf_only,
        rename(client.bad),
    )


# The analysis -----------------------------------------------------------------------------------


@dataclass
class Run:
    era: Era
    lockout: pl.DataFrame
    headroom: pl.DataFrame
    policy_of: dict[str, str]
    #: The end of validity of each certificate of today's chain, by its name in the model.
    not_after: dict[str, dt.datetime]
    #: The platform stores that hold today's root.
    trusted_by: list[str]


def _spare_key(directory: Path) -> tuple[Path, str]:
    """A spare key the team holds offline: its public half as PEM, as `suggest --backup-key`
    takes it, and its pin."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = directory / "spare.pub.pem"
    path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path, pinscan.spki_pin(path.read_bytes())


def _scan(
    directory: Path, leaf: pki.Issued, era: Era, trusted: Sequence[str]
) -> pinscan.ScanDataset:
    """lechains' dataset, with the path each platform store builds (the scan verifies every
    chain per store): the stores ``trusted`` (those that hold the root) verify the chain, and
    each policy is judged on its own platform's path."""
    path = (leaf.der, *(lechains.der(ca) for ca in era.above))
    stores = [(s, s in trusted, path if s in trusted else ()) for s in TRUST_STORES]
    writer = DatasetWriter.create(directory, scan_id="formats", arguments={}, version="test")
    writer.write(
        [
            Endpoint(
                target_id="formats",
                line=1,
                target=HOST,
                host=HOST,
                ip="127.0.0.1",
                port=443,
                sni=None,
                status="ok",
                presented=list(path[:-1]),
                verified_chain=list(path),
                verified=True,
                trust_store=next(s for s, ok, _ in stores if ok),
                store_paths=stores,
            )
        ]
    )
    writer.finish({})
    return pinscan.open(directory)


class Runs:
    """One analysis per era, of one endpoint pinned by every case's policy file, made on first
    use: the files are written and read as an app ships them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._done: dict[str, Run] = {}

    def __call__(self, era: Era, switch_to: Sequence[str] = (SWITCH_FAMILY,)) -> Run:
        key = f"{era.name}-{'-'.join(switch_to)}"
        if key not in self._done:
            self._done[key] = self._run(era, switch_to, self.directory / key)
        return self._done[key]

    @staticmethod
    def _run(era: Era, switch_to: Sequence[str], directory: Path) -> Run:
        leaf = pki.leaf(HOST)
        trusted = pinscan.Catalog.shipped().ca(lechains.pin(era.above[-1]))["trusted_by"]
        dataset = _scan(directory / "scan", leaf, era, trusted)
        spare_path, spare_pin = _spare_key(directory)
        keys = Keys(era, pinscan.spki_pin(leaf.der), spare_pin)
        keys.sha1["root"] = _spki_sha1(lechains.der(era.above[-1]))
        policies = []
        policy_of = {}
        for case in CASES:
            home = directory / "policies" / case.id
            home.mkdir(parents=True)
            path = case.write(home, keys, era)
            # The file is what a real app ships: its own format is told from its content.
            assert case.format in formats.sniff(path.read_bytes()), case.id
            policy = pinscan.load_policy(path, format=case.format, hosts=[HOST])
            policies.append(policy)
            policy_of[case.id] = policy.name
        analysis = analyse(
            dataset,
            policies,
            "all",
            as_of=era.as_of,
            switch_to=switch_to,
            backup_keys=[spare_path],
        )
        not_after = {LEAF: leaf.cert.not_valid_after_utc}
        for name in era.above:
            cert = x509.load_der_x509_certificate(lechains.der(name))
            not_after[name] = cert.not_valid_after_utc
        return Run(era, analysis.lockout, analysis.headroom(), policy_of, not_after, trusted)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("formats"))


def _rows(run: Run, case: Case) -> pl.DataFrame:
    return run.lockout.filter(pl.col("policy") == run.policy_of[case.id])


@pytest.mark.parametrize(
    ("era", "case"),
    [(era, case) for era in ERAS for case in CASES],
    ids=[f"{era.name}-{case.id}" for era in ERAS for case in CASES],
)
def test_every_scenario_on_every_format(runs: Runs, era: Era, case: Case) -> None:
    run = runs(era)
    client = _symbolic(case.client(era), era)
    rows = _rows(run, case)
    chains = scenario_chains(era)
    assert set(rows["kind"].cast(pl.String)) == set(KINDS)
    assert set(rows["format"]) == {case.format}
    # Judged on its platform's path (curl: Mozilla's, the scan has no system store); the
    # formats that name no platform on the path of the scan's first store that verifies.
    scanned = [s for s in TRUST_STORES if s in run.trusted_by]
    store = next(s for s in PLATFORM_STORES.get(case.format, scanned) if s in scanned)
    assert set(rows.drop_nulls("store")["store"]) <= {store}
    today = client.verdict(chains["renew_same_key"])  # today's chain, today's leaf
    assert set(rows["today"].cast(pl.String)) == {today}
    if client.leaf_only and era.removed is not None:
        # Covered, and failing, in test_root_removed_rebuilds_for_leaf_only_clients.
        chains.pop("root_removed")
        rows = rows.filter(pl.col("scenario").cast(pl.String) != "root_removed")
    got = dict(rows.select(pl.col("scenario").cast(pl.String), "outcome").iter_rows())
    want = {scenario: client.outcome(chain) for scenario, chain in chains.items()}
    assert got == want
    passing = rows.filter(pl.col("verdict") == "pass")
    got_at = dict(
        passing.select(pl.col("scenario").cast(pl.String), "matched_position").iter_rows()
    )
    want_at = {
        scenario: client.position(chain)
        for scenario, chain in chains.items()
        if chain is not None and client.verdict(chain) == "pass"
    }
    assert got_at == want_at


LEAF_ONLY_CASES = [c for c in CASES if c.client(E_ERA).leaf_only]


@pytest.mark.parametrize("case", LEAF_ONLY_CASES, ids=[c.id for c in LEAF_ONLY_CASES])
def test_root_removed_rebuilds_for_leaf_only_clients(runs: Runs, case: Case) -> None:
    # curl verifies the chain against its store first: with ISRG Root X2 distrusted it builds
    # E5 > ISRG Root X1 as every other client does, then checks the leaf key alone.
    client = _symbolic(case.client(E_ERA), E_ERA)
    rows = _rows(runs(E_ERA), case).filter(pl.col("scenario").cast(pl.String) == "root_removed")
    chain = scenario_chains(E_ERA)["root_removed"]
    assert rows["outcome"].cast(pl.String).to_list() == [client.outcome(chain)]


@pytest.mark.parametrize("era", [R_ERA, Y_ERA], ids=["r10", "gen-y"])
def test_switch_to_a_family_by_its_common_name(runs: Runs, era: Era) -> None:
    # `--switch-to DigiCert`, as the issue writes it: in 2025 as today a DigiCert certificate
    # builds to a DigiCert root the platform trusts, where an ISRG pin does not match.
    run = runs(era, switch_to=("DigiCert",))
    case = next(c for c in CASES if c.id == "android-root")
    rows = _rows(run, case).filter(pl.col("kind") == "switch")
    assert rows["outcome"].cast(pl.String).to_list() == ["locks_out"]
    assert "no path" not in str(rows["new_chain"][0])


@pytest.mark.parametrize(
    ("era", "case"),
    [pytest.param(era, case, id=f"{era.name}-{case.id}") for era in ERAS for case in CASES],
)
def test_headroom_on_every_format(runs: Runs, era: Era, case: Case) -> None:
    run = runs(era)
    client = _symbolic(case.client(era), era)
    rows = run.headroom.filter(pl.col("policy") == run.policy_of[case.id])
    assert rows.height == 1
    row = rows.row(0, named=True)
    today = (LEAF, *era.above)
    matched, places, carrier = client.headroom(today, run.not_after, case.expires(era))
    got = (row["pins_matched"], sorted(row["positions"]), row["carrier"])
    assert got == (matched, places, carrier)
    lockout = _rows(run, case)
    for outcome in ("survives", "locks_out"):
        named = lockout.filter(pl.col("outcome") == outcome)["scenario"].cast(pl.String)
        assert sorted(row[outcome]) == sorted(named)


def test_hpkp_max_age_zero_unpins(tmp_path: Path) -> None:
    # max-age=0 makes a browser forget the host's pins: nothing is pinned, so no scenario can
    # lock it out and the analysis has no row for it.
    era = R_ERA
    leaf = pki.leaf(HOST)
    dataset = lechains.write(tmp_path / "scan", [(HOST, leaf, list(era.above))])
    keys = Keys(era, pinscan.spki_pin(leaf.der), lechains.pin("R11"))
    path = tmp_path / "headers.txt"
    path.write_text(hpkp_dump(keys, [LEAF, SPARE], max_age="0"))
    policy = pinscan.load_policy(path)
    assert policy.format == "hpkp" and policy.rules == ()
    assert analyse(dataset, [policy], "all", as_of=era.as_of).lockout.is_empty()


def test_every_format_of_the_semantics_table_is_covered() -> None:
    # An app artifact is no format of its own: it holds policies of the others.
    assert {c.format for c in CASES} == set(formats.MODULES) - {"artifact"}


@pytest.mark.parametrize(
    ("fmt", "enforce", "outcome"),
    [
        # Android hashes the SPKI's own bytes: any key type is a key it can pin.
        ("android", True, "survives"),
        # TrustKit rebuilds the SPKI from the raw key, for RSA 2048-4096 and P-256/P-384 only:
        # anything else blocks the connection, whether it enforces or only reports.
        ("trustkit", True, "locks_out"),
        ("trustkit", False, "locks_out"),
    ],
    ids=["android", "trustkit", "trustkit-report-only"],
)
def test_a_spare_key_trustkit_cannot_hash(
    tmp_path: Path, fmt: str, enforce: bool, outcome: str
) -> None:
    era = R_ERA
    leaf = pki.leaf(HOST)
    dataset = _scan(tmp_path / "scan", leaf, era, ["android", "apple"])
    spare = tmp_path / "spare-p521.pub.pem"
    spare.write_bytes(
        ec.generate_private_key(ec.SECP521R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    keys = Keys(era, pinscan.spki_pin(leaf.der), pinscan.spki_pin(spare.read_bytes()))
    path = tmp_path / "policy"
    if fmt == "android":
        path.write_text(android_xml(keys, [SPARE, LEAF]))
    else:
        path.write_bytes(trustkit_plist(keys, [SPARE, LEAF], enforce=enforce))
    policy = pinscan.load_policy(path, format=fmt)
    frame = analyse(
        dataset, [policy], "backup_key,renew_same_key", as_of=era.as_of, backup_keys=[spare]
    ).lockout
    got = dict(frame.select(pl.col("scenario").cast(pl.String), "outcome").iter_rows())
    assert got == {"renew_same_key": "survives", "backup_key": outcome}


@pytest.mark.parametrize("fmt", ["okhttp", "toml"])
def test_sha1_pin_on_a_sibling(tmp_path: Path, fmt: str) -> None:
    # OkHttp (and pinscan's TOML) take sha1/ pins: a pin-set of R10 by SHA-256 and R11 by
    # SHA-1 accepts a certificate from either; R12 is pinned by neither.
    era = R_ERA
    leaf = pki.leaf(HOST)
    dataset = _scan(tmp_path / "scan", leaf, era, ["android", "mozilla"])
    keys = Keys(era, pinscan.spki_pin(leaf.der), pinscan.spki_pin(leaf.der))
    keys.sha1["R11"] = _spki_sha1(lechains.der("R11"))
    if fmt == "okhttp":
        path = tmp_path / "ApiClient.kt"
        path.write_text(okhttp_kotlin(keys, [(HOST, "issuer"), (HOST, "sha1:R11")]))
    else:
        path = tmp_path / "pins.toml"
        sha1 = f'"sha1/{keys.sha1["R11"]}"'
        path.write_text(toml_text(keys, f"pins = [{{issuer}}, {sha1}]"))
    policy = pinscan.load_policy(path, format=fmt)
    frame = analyse(dataset, [policy], "sibling:R11,sibling:R12", as_of=era.as_of).lockout
    assert set(frame["today"].cast(pl.String)) == {"pass"}
    got = dict(frame.select(pl.col("scenario").cast(pl.String), "outcome").iter_rows())
    assert got == {"sibling:R11": "survives", "sibling:R12": "locks_out"}


def test_hpkp_enforced_and_report_only_headers(tmp_path: Path) -> None:
    # A site enforcing ISRG Root X1 plus a spare, while trialling a narrower R10/R11 set as
    # Report-Only (RFC 7469 section 2.1: the two are separate policies; a Report-Only mismatch
    # is reported, never blocked). A renewal from R12 passes the enforced pins.
    era = R_ERA
    leaf = pki.leaf(HOST)
    dataset = _scan(tmp_path / "scan", leaf, era, ["android", "mozilla"])
    keys = Keys(era, pinscan.spki_pin(leaf.der), lechains.pin("R11"))
    path = tmp_path / "headers.txt"
    path.write_text(
        hpkp_dump(keys, ["root", SPARE]) + hpkp_dump(keys, ["R10", "R11"], report_only=True)
    )
    policy = pinscan.load_policy(path)
    assert [r.enforce for r in policy.rules] == [True, False]
    frame = analyse(dataset, [policy], "renew_new_key,sibling", as_of=era.as_of).lockout
    got = dict(frame.select(pl.col("scenario").cast(pl.String), "outcome").iter_rows())
    assert got == dict.fromkeys(
        ["renew_new_key", *(f"sibling:{s}" for s in era.siblings)], "survives"
    )
