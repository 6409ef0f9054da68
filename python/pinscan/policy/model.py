# SPDX-License-Identifier: Apache-2.0
"""One rule model under every pin-policy format.

Each reader turns its format into a :class:`Policy`: a list of :class:`Rule` (which names a rule
covers, which pins it requires at which chain positions, until when, enforced or report-only) plus
the two ways formats combine rules for one name. The evaluator only knows this model, so a format's
quirks live in its reader and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum


class Match(StrEnum):
    """Which names a rule's ``host`` covers."""

    EXACT = "exact"
    """The host itself."""
    SUBDOMAINS = "subdomains"
    """The host and every name below it, any depth (Android, TrustKit, HPKP, Chromium, ``**.``)."""
    ONE_LEVEL = "one_level"
    """The host and names exactly one label below it (iOS ``NSIncludesSubdomains``)."""
    ONE_LABEL = "one_label"
    """Names exactly one label below the host, not the host itself (OkHttp ``*.``)."""


class Combine(StrEnum):
    """How a format combines several rules that cover one name."""

    MOST_SPECIFIC = "most_specific"
    """Only the closest rule applies: an exact host, else the longest matching suffix."""
    UNION = "union"
    """Every covering rule applies; their pins are united per position (iOS ATS, OkHttp)."""


class Position(StrEnum):
    """Where in the chain a pin may match."""

    ANY = "any"
    LEAF = "leaf"
    """Position 0 only (iOS ``NSPinnedLeafIdentities``, curl)."""
    CA = "ca"
    """Positions 1 and up, the anchor included (iOS ``NSPinnedCAIdentities``)."""
    ANCHOR = "anchor"
    """Where the path ends or passes through on its way there: positions 1 and up, or the leaf
    when it is the path's only certificate (a self-signed server certificate the client trusts
    as an anchor: Node.js ``ca``)."""


class ChainSource(StrEnum):
    """Which chain a client checks pins against."""

    VERIFIED = "verified"
    """The chain the client builds, ending at a trust anchor the server may not send."""
    LEAF = "leaf"
    """The leaf the server presented (curl ``--pinnedpubkey``)."""


@dataclass(frozen=True, order=True)
class Location:
    """A place in a policy file; ``line`` is 1-based, ``None`` when the format has no lines."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    """Something a platform accepts silently (a skipped entry) or a weakness worth saying."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


#: The algorithm of a pin on a whole certificate (the SHA-256 of its DER: Node.js
#: ``cert.fingerprint256``), not on its key.
CERT_SHA256 = "cert-sha256"


@dataclass(frozen=True)
class Pin:
    """A pin as a client compares it: ``algorithm`` and the digest as canonical padded base64.

    ``text`` keeps what the file says. A digest of the wrong length is kept as it is: a client
    that accepts it simply never matches it, and the evaluator reproduces that.
    """

    algorithm: str
    digest: str
    text: str
    location: Location | None = None

    @classmethod
    def parse(
        cls,
        algorithm: str,
        value: str,
        *,
        location: Location | None = None,
        text: str | None = None,
        lenient: bool = False,
    ) -> Pin:
        """Decode ``value`` (base64). Strict by default; ``lenient`` also takes what okio
        accepts: no padding, the URL-safe alphabet, embedded whitespace and extra ``=``.

        Raises :class:`ValueError` with the reason when the value cannot be decoded.
        """
        return cls(algorithm, canonical_digest(value, lenient=lenient), text or value, location)

    @classmethod
    def sha256(cls, digest_b64: str, location: Location | None = None) -> Pin:
        """A SHA-256 pin from a pin pinscan computed itself (already canonical)."""
        return cls("sha256", digest_b64, f"sha256/{digest_b64}", location)

    @property
    def label(self) -> str:
        """``sha256/<base64>``: the form OkHttp, TrustKit reports and pinscan's output use."""
        return f"{self.algorithm}/{self.digest}"


def canonical_digest(value: str, *, lenient: bool = False) -> str:
    """The digest bytes of a base64 pin value, re-encoded as standard padded base64."""
    text = value.strip()
    if lenient:
        text = "".join(text.split()).rstrip("=").replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {value!r}") from exc
    if not raw:
        raise ValueError("empty pin")
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class PinSet:
    """Pins that must match at ``positions``: a chain passes the set when any one of them does.

    An empty set is kept, not dropped: iOS still treats the host as pinned and never matches it.
    """

    pins: tuple[Pin, ...]
    positions: Position = Position.ANY


@dataclass(frozen=True)
class TrustAnchor:
    """Where an Android config takes its roots from: ``system``, ``user``, ``wfa``, or a bundled
    ``@raw`` resource, whose certificates' key pins are ``pins`` once an artifact reader has
    resolved it (from the app, or from ``res/raw/`` beside a source tree's ``res/xml/``)."""

    source: str
    pins: tuple[Pin, ...] = ()
    file: str | None = None
    """The resolved file, ``app.apk!res/raw/ca.pem``."""


@dataclass(frozen=True)
class Rule:
    """One pinned host pattern of a policy.

    A chain passes a rule when every one of its ``pin_sets`` matches and none of its ``bad_pins``
    (Chromium's veto list) appears in the chain.
    """

    host: str
    """Lowercase, without a trailing dot, without a wildcard prefix (``match`` says the scope)."""
    match: Match
    pin_sets: tuple[PinSet, ...]
    location: Location
    bad_pins: tuple[Pin, ...] = ()
    expires: dt.datetime | None = None
    """The UTC instant after which the client stops enforcing the rule."""
    enforce: bool = True
    """False: a mismatch is reported, not blocked (TrustKit ``enforcePinning=false``, HPKP RO)."""
    exclude: bool = False
    """A carve-out (TrustKit ``kSKExcludeSubdomainFromParentPolicy``): the names it covers are
    not pinned, whatever a parent rule says."""
    override_pins: frozenset[str] = frozenset()
    """Android trust-anchor sources with ``overridePins``: a chain anchored there is not pinned."""
    error: str | None = None
    """Why the client refuses this rule (its hosts get the verdict ``error``)."""
    pattern: str = ""
    """The host pattern as written in the file, for reports."""
    anchors: tuple[TrustAnchor, ...] = ()
    """Android's trust anchors for the rule's names (empty for other formats): the evaluator
    fails a chain to a root none of them trusts, as Android's ``NetworkSecurityTrustManager``
    does (:mod:`pinscan.policy.evaluate`)."""

    @property
    def pins(self) -> tuple[Pin, ...]:
        return tuple(pin for pin_set in self.pin_sets for pin in pin_set.pins)

    def label(self) -> str:
        return self.pattern or self.host


@dataclass(frozen=True)
class Policy:
    """A pin policy as one client would load it.

    ``error`` is set when the client rejects the whole file (Android on a bad date, OkHttp on a
    bad pin): every host the rules cover then gets the verdict ``error``. ``warnings`` are what
    the platform skips or accepts silently.
    """

    name: str
    format: str
    rules: tuple[Rule, ...]
    combine: Combine
    chain: ChainSource = ChainSource.VERIFIED
    error: str | None = None
    error_location: Location | None = None
    warnings: tuple[Diagnostic, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    """Semantics a verdict assumes (e.g. the OkHttp version), for reports."""

    @property
    def valid(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class SuggestedPin:
    """One pin of a suggested pin-set and why it is there, for the comment next to it."""

    pin: Pin
    role: str
    """``leaf``, ``intermediate``, ``root`` (keys in the current chains) or ``backup`` (a spare
    key or CSR that is not deployed: the pin that keeps the app working after a key loss)."""
    comment: str
    """One line saying what the key is, e.g. ``leaf key of CN=api.example.com (3 endpoints)``."""


@dataclass(frozen=True)
class Suggestion:
    """What ``pinscan suggest`` asks a writer to render as a complete policy file.

    Writers place pins by ``role`` where a format distinguishes positions (iOS leaf and CA
    lists), emit ``expires`` where the format has an expiration, and put ``header`` lines and
    each pin's comment in the file as comments where the format allows comments.
    """

    domain: str
    include_subdomains: bool
    pins: tuple[SuggestedPin, ...]
    expires: dt.date | None
    header: tuple[str, ...] = ()
    enforce: bool = True
    names: tuple[str, ...] = ()
    """The endpoint names the pin-set was made from, for formats that pin exact hosts (curl)."""
    coverage: tuple[str, ...] = ()
    """What the CA catalog says of the pins chosen: which siblings of each issuing CA they cover
    and how, and what they cannot survive; one sentence each, also among the header lines."""


def comment_text(text: str) -> str:
    """``text`` as the inside of an XML comment, on one line: a comment cannot hold ``--`` nor
    end in ``-``. A suggestion words its own text without command-line flags; data that holds
    ``--`` is shown readably: IDNA A-labels (``xn--``) as the names they spell, any other run
    of dashes with spaces between them."""
    text = _A_LABEL.sub(_u_label, " ".join(text.split()))
    while "--" in text:
        text = text.replace("--", "- -")
    return text + " " if text.endswith("-") else text


_A_LABEL = re.compile(r"(?i)\bxn--[a-z0-9-]+")


def _u_label(match: re.Match[str]) -> str:
    try:
        return match.group().encode("ascii").decode("idna")
    except UnicodeError:
        return match.group()


def utc_midnight(day: dt.date) -> dt.datetime:
    """00:00 UTC of ``day``: when TrustKit (and, read in UTC, Android) stops enforcing."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def normalize_host(host: str) -> str:
    """A name as clients compare it: lowercase, no trailing dot, IDNA A-labels kept as written."""
    return host.strip().rstrip(".").lower()


__all__ = [
    "CERT_SHA256",
    "ChainSource",
    "Combine",
    "Diagnostic",
    "Location",
    "Match",
    "Pin",
    "PinSet",
    "Policy",
    "Position",
    "Rule",
    "SuggestedPin",
    "Suggestion",
    "TrustAnchor",
    "canonical_digest",
    "comment_text",
    "normalize_host",
    "utc_midnight",
]
