# SPDX-License-Identifier: Apache-2.0
"""A safe pin-set for a domain, from what its endpoints really serve.

The rule that keeps apps alive: at least two pins, at least one of them a key that is in no
current chain (a spare key or CSR kept offline), so that losing or rotating any served key
leaves a pin that still matches. The served pins chosen are CA keys of the chains clients build
(the verified chains), which survive leaf renewals; without a spare key the suggestion falls
back to the root and says loudly why that is weaker.

Which CA keys comes from the CA catalog: a renewal may come from any sibling of today's issuing
CA (Let's Encrypt picks among its active intermediates at random), so the pins are the smallest
set of keys that every chain from every sibling passes through (the siblings' shared issuing key
or root, else the siblings themselves): a chain that builds without today's root, through a
cross-sign, passes one of them too. An issuing CA the catalog lacks is pinned alone.

What is written is then judged against the same scan, as `pinscan check` judges it
(:func:`render`): a pin-set that would fail an endpoint, typically one whose chain does not
verify and so has no CA key a client builds, is refused with the endpoints named, never written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import polars as pl

from pinscan.catalog.graph import Catalog
from pinscan.certs.keys import spki_pin
from pinscan.dataset import ScanDataset
from pinscan.errors import InputError, SuggestError
from pinscan.policy.evaluate import evaluate, instant
from pinscan.policy.formats import read, write
from pinscan.policy.model import Pin, SuggestedPin, Suggestion, normalize_host
from pinscan.records import VERIFY_ERRORS

#: How long a suggested pin-set stays enforced when no expiration is given: long enough to ship
#: an update, short enough that an app nobody updates stops pinning rather than bricking.
DEFAULT_LIFETIME = dt.timedelta(days=365)

#: Endpoints named in one message, at most; the rest are counted.
_NAMED = 5
#: CAs named in one sentence, at most (Let's Encrypt's RSA siblings are eight).
_CAS_NAMED = 8
#: The most keys tried together as a cover of the siblings; past that the siblings themselves
#: are pinned, a cover that always exists.
_MAX_COVER = 4
#: The most sets of keys tried as covers of one CA's siblings.
_MAX_TRIED = 20_000


@dataclass(frozen=True)
class _Warning:
    """A warning as the terminal prints it (with command-line flags) and as the file says it
    (without: XML comments cannot hold ``--``, and the file outlives the command)."""

    terminal: str
    file: str


@dataclass(frozen=True)
class BackupKey:
    """A spare key (certificate, public key, CSR or private key) and where it came from."""

    data: bytes
    source: str
    password: bytes | None = None

    @classmethod
    def read(cls, path: str | Path, password: bytes | None = None) -> BackupKey:
        try:
            return cls(Path(path).read_bytes(), str(path), password)
        except OSError as exc:
            raise InputError(str(path), exc.strerror or str(exc)) from exc


def suggest(
    dataset: ScanDataset,
    domain: str,
    *,
    backup_keys: Sequence[BackupKey] = (),
    include_subdomains: bool | None = None,
    expires: dt.date | None = None,
    as_of: dt.datetime | dt.date | None = None,
    leaf_only: bool = False,
    catalog: Catalog | None = None,
) -> tuple[Suggestion, list[str]]:
    """A pin-set for ``domain`` and the warnings to print loudly with it.

    Covers the endpoints named ``domain`` and, when ``include_subdomains`` (by default: when the
    scan has any), the names below it. Raises :class:`InputError` when no such endpoint served a
    chain, or when two distinct pins cannot be found. ``leaf_only`` is for clients that check
    the leaf alone (curl): the served pins are then the leaf keys. ``catalog`` (the shipped one
    by default; ``Catalog.shipped().with_pems(files)`` for a private PKI) gives each issuing
    CA's siblings, which the CA pins cover; ``Suggestion.coverage`` says how. The warnings name
    command-line flags; the header lines of the suggestion say the same without them.
    :func:`render` writes the file and proves it passes `pinscan check`.
    """
    domain = normalize_host(domain)
    moment = instant(as_of)
    name = pl.coalesce("sni", "host").str.strip_chars_end(".").str.to_lowercase()
    endpoints = dataset.endpoints.select("endpoint_id", "target", "verify_error", name=name).filter(
        (pl.col("name") == domain) | pl.col("name").str.ends_with(f".{domain}")
    )
    chains = _chains(dataset, endpoints).collect()
    if chains.is_empty():
        raise InputError(
            str(dataset.path), f"no endpoint named {domain} or below it served a certificate"
        )
    below = chains.filter(pl.col("name") != domain).height > 0
    if include_subdomains is None:
        include_subdomains = below
    if not include_subdomains:
        chains = chains.filter(pl.col("name") == domain)
        if chains.is_empty():
            raise InputError(str(dataset.path), f"no endpoint named exactly {domain} served a key")
    endpoints_n = chains["endpoint_id"].n_unique()

    verified = chains.filter(pl.col("source") == "verified")
    # Pins come from the chains clients build. Where none verified (a private CA the scan had no
    # root for, say), from what was presented, which is what `check` then judges.
    from_verified = not verified.is_empty()
    pinned_from = verified if from_verified else chains
    # Each endpoint's chain is its verified one, or what it presented when that did not verify.
    unverified = (
        chains.filter(pl.col("source") == "presented")
        .select("endpoint_id", "target", "name", "verify_error", verified=pl.lit(False))
        .unique("endpoint_id")
    )

    warnings: list[_Warning] = []
    pins: list[SuggestedPin] = []
    seen: set[str] = set()

    def add(pin: str, role: str, comment: str) -> None:
        if pin not in seen:
            seen.add(pin)
            pins.append(SuggestedPin(Pin.sha256(pin), role, comment))

    def warn(terminal: str, file: str | None = None) -> None:
        warnings.append(_Warning(terminal, terminal if file is None else file))

    coverage: list[str] = []
    if leaf_only:
        for r in _keys_at(pinned_from, pl.col("position") == 0).iter_rows(named=True):
            add(r["spki_sha256"], "leaf", f"leaf key of {r['subject']}{_count(r)}")
        coverage.append(
            "This client checks the leaf alone: no CA key can be pinned, so a renewal with a new "
            "key, from any CA, locks it out unless it uses the spare key."
        )
    else:
        issuing = _keys_at(pinned_from, pl.col("position") == 1)
        top = pl.col("position") == pl.col("position").max().over("endpoint_id")
        roots = (
            pinned_from.filter(top)
            .select("endpoint_id", root="spki_sha256")
            .join(pinned_from.filter(pl.col("position") == 1), on="endpoint_id")
            .group_by("spki_sha256")
            .agg(pl.col("root").unique().sort())
        )
        plan = _cover(
            catalog or Catalog.shipped(),
            issuing.join(roots, on="spki_sha256", how="left"),
            moment,
        )
        coverage.extend(plan.notes)
        for pin, role, comment in plan.pins:
            add(pin, role, comment)
        # Every chain of today must still pass: what the catalog knows of a CA can differ from
        # the path a scan built (a private anchor above a public CA, say).
        missed = (
            pinned_from.filter(pl.col("position") >= 1)
            .group_by("endpoint_id")
            .agg(hit=pl.col("spki_sha256").is_in(list(seen)).any())
        )
        lost = pinned_from.join(missed.filter(~pl.col("hit")), on="endpoint_id", how="semi")
        for r in _keys_at(lost, pl.col("position") == 1).iter_rows(named=True):
            add(r["spki_sha256"], "intermediate", _issuing(r))
    spares = 0
    for key in backup_keys:
        try:
            pin = spki_pin(key.data, password=key.password)
        except InputError as exc:
            raise InputError(key.source, exc.message) from None
        if pin in set(chains["spki_sha256"]):
            warn(
                f"{key.source} is already served by the fleet: it is not a backup; "
                "generate a key that is kept offline"
            )
        elif pin not in seen:
            spares += 1
        add(pin, "backup", f"spare key from {Path(key.source).name}, not deployed")
    spare_recipe = (
        "Make a spare key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
        "-out spare.key), keep it offline, and "
    )
    if not spares and leaf_only:
        lead = (
            "NO BACKUP KEY: this client checks the leaf alone and every pin is a current leaf "
            "key: a renewal with a new key, or a lost key, breaks it. Make a spare key, keep it "
            "offline, and "
        )
        warn(lead + "pass --backup-key.", lead + "suggest again with it as a backup key.")
    elif not spares:
        top = pl.col("position") == pl.col("position").max().over("endpoint_id")
        kind = "root CA key" if from_verified else "top CA key the servers present"
        for r in _keys_at(pinned_from, top).iter_rows(named=True):
            add(r["spki_sha256"], "root", f"{kind} of {r['subject']}{_count(r)}")
        if len(pins) < 2:  # the catalog's cover was that root: today's issuer is the second
            for r in _keys_at(pinned_from, pl.col("position") == 1).iter_rows(named=True):
                add(r["spki_sha256"], "intermediate", _issuing(r))
        lead = (
            f"NO BACKUP KEY: no pin below is a spare key. The {kind} is pinned: it "
            "survives a lost leaf key and a new intermediate of the same CA, but a move to "
            "another CA, or the CA losing trust, bricks the client. " + spare_recipe
        )
        warn(
            lead + "pass --backup-key spare.key.",
            lead + "suggest again with spare.key as a backup key.",
        )
    if len(pins) < 2:
        for r in _keys_at(pinned_from, pl.col("position") == 0).iter_rows(named=True):
            add(r["spki_sha256"], "leaf", f"leaf key of {r['subject']}{_count(r)}")
        warn(
            "the chain has no CA above the leaf: the leaf key is pinned, so renewing the "
            "certificate with a new key breaks the client unless a backup pin is shipped"
        )
    if len(pins) < 2:
        raise SuggestError(
            str(dataset.path),
            f"cannot find two distinct pins for {domain}: pass --backup-key with a spare key",
        )
    if not unverified.is_empty():
        warn(*_unverified_warning(dataset, unverified, from_verified))
    until = expires or (moment + DEFAULT_LIFETIME).date()
    header = (
        f"Pin-set for {domain}{' and its subdomains' if include_subdomains else ''}, "
        f"suggested by pinscan from scan {dataset.meta.get('scan_id')} "
        f"({endpoints_n} endpoints) on {moment:%Y-%m-%d}.",
        f"Expires {until:%Y-%m-%d}: after that the client stops pinning rather than failing. "
        "Ship new pins before then.",
        *coverage,
        *(f"WARNING: {w.file}" for w in warnings),
    )
    names = tuple(sorted(set(chains["name"])))
    suggestion = Suggestion(
        domain,
        include_subdomains,
        tuple(pins),
        until,
        header,
        names=names,
        coverage=tuple(coverage),
    )
    return suggestion, [w.terminal for w in warnings]


@dataclass(frozen=True)
class _Plan:
    """The CA pins the catalog suggests: ``(pin, role, comment)``, and why, in sentences."""

    pins: list[tuple[str, str, str]]
    notes: list[str]


class _Paths:
    """The catalog as a graph over keys, upwards through the certificates valid at ``moment``:
    the chains a CA's certificate can build.

    A chain may end at any root, trusted by a store today or not (Let's Encrypt's Gen Y roots
    reach the stores through a cross-sign by ISRG Root X1 until the stores carry them, and a
    chain then stops at them), or at a key above which the catalog knows no issuer.
    """

    def __init__(self, catalog: Catalog, moment: dt.datetime) -> None:
        self.catalog = catalog
        self.moment = moment
        self._up: dict[str, tuple[str, ...]] = {}

    def up(self, pin: str) -> tuple[str, ...]:
        if pin not in self._up:
            parents = self.catalog.parents(pin, self.moment).filter(pl.col("valid"))
            self._up[pin] = tuple(parents["spki_sha256"])
        return self._up[pin]

    def is_root(self, pin: str) -> bool:
        ca = self.catalog.ca(pin)
        return bool(ca and ca["is_root"])

    def escapes(self, start: str, cut: Iterable[str], removed: Iterable[str] = ()) -> bool:
        """Whether a chain from ``start`` can end without passing a key of ``cut`` or of
        ``removed`` (roots a store distrusted: no chain through them builds)."""
        barred = {*cut, *removed}
        todo, seen = [start], {start}
        while todo:
            key = todo.pop()
            if key in barred:
                continue
            if self.is_root(key) or not self.up(key):
                return True
            for parent in self.up(key):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return False

    def above(self, pins: Iterable[str]) -> list[str]:
        """``pins`` and every key above them, nearest first."""
        order = list(dict.fromkeys(pins))
        for key in order:
            order.extend(parent for parent in self.up(key) if parent not in order)
        return order

    def name(self, pin: str) -> str:
        ca = self.catalog.ca(pin)
        return ca["name"] if ca else pin

    def names(self, pins: Iterable[str], conjunction: str = "and") -> str:
        """``A, B and C``; past :data:`_CAS_NAMED` keys, the first and how many more."""
        names = sorted(self.name(pin) for pin in pins)
        if len(names) > _CAS_NAMED:
            names = [*names[:_CAS_NAMED], f"{len(names) - _CAS_NAMED} more"]
        if len(names) == 1:
            return names[0]
        return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _cover(catalog: Catalog, issuing: pl.DataFrame, moment: dt.datetime) -> _Plan:
    """The CA pins for the issuing CAs of ``issuing`` (rows of :func:`_keys_at` with ``root``,
    the roots their chains end at today): for each, the smallest set of keys that every chain
    of every sibling passes through. CAs the catalog lacks are pinned themselves."""
    paths = _Paths(catalog, moment)
    pins: list[tuple[str, str, str]] = []
    notes: list[str] = []
    known = []
    for r in issuing.iter_rows(named=True):
        if catalog.ca(r["spki_sha256"]):
            known.append(r)
            continue
        pins.append((r["spki_sha256"], "intermediate", _issuing(r)))
        notes.append(
            f"{r['subject']} (the issuing CA of {_plural(r['endpoints'], 'endpoint')}) is not in "
            "the CA catalog: its siblings are unknown and it is pinned alone. A private CA? "
            "Suggest again with its certificates as a CA catalog."
        )
    siblings = {
        r["spki_sha256"]: catalog.siblings(r["spki_sha256"], moment)["spki_sha256"].to_list()
        for r in known
    }
    chosen: list[str] = []
    for r in known:
        key = r["spki_sha256"]
        mine, others = siblings[key], [k for k in siblings[key] if k != key]
        cover = _smallest_cover(paths, mine, key)
        chosen.extend(k for k in cover if k not in chosen)
        who = f"{paths.name(key)} (the issuing CA of {_plural(r['endpoints'], 'endpoint')})"
        if not others:
            notes.append(f"{who} has no sibling in the CA catalog: only it issues from its key.")
            continue
        said = (
            f"{who} may be replaced at a renewal by any of its {_plural(len(others), 'sibling')} "
            f"in the CA catalog ({paths.names(others)}): "
        )
        if len(cover) < len(mine):
            said += (
                f"every chain from them passes {paths.names(cover, 'or')}: "
                f"{_plural(len(cover), 'pin')} for {_plural(len(mine), 'CA')}."
            )
        else:
            said += "no fewer keys are in every chain from them, so each is pinned."
        notes.append(said)
    every = list(dict.fromkeys(key for keys in siblings.values() for key in keys))
    # A key one CA's cover needs may make another's redundant (ISRG Root X1 for R12 and E7).
    for key in list(chosen):
        rest = [k for k in chosen if k != key]
        if not any(paths.escapes(s, rest) for s in every):
            chosen = rest
    today = set(siblings)
    for key in chosen:
        below = [s for s in every if s == key or key in paths.above([s])]
        role = "root" if paths.is_root(key) else "intermediate"
        ca = catalog.ca(key)
        assert ca is not None  # chosen from the catalog's keys
        what = "root CA key" if role == "root" else "CA key"
        if below == [key]:
            about = "today's issuing CA" if key in today else "a sibling of today's issuing CA"
        else:
            about = f"above {paths.names(below)}"
        pins.append((key, role, f"{what} of {ca['subject']}, {about}"))
    for r in known:
        key, roots = r["spki_sha256"], [root for root in r["root"] or () if paths.is_root(root)]
        if not roots or key in roots:
            continue
        who, gone = paths.name(key), paths.names(roots)
        # The cover cuts every path from the siblings to any root, so whatever path builds
        # without today's root passes a pin: only whether one builds is worth saying.
        if paths.escapes(key, (), roots):
            notes.append(
                f"Without {gone} the chain of {who} still builds, through a cross-sign to "
                "another root, and passes a pinned key."
            )
        else:
            notes.append(
                f"Without {gone} the chain of {who} builds no other way the catalog knows: "
                "a distrust of that root cannot be survived by pins."
            )
    return _Plan(pins, notes)


def _smallest_cover(paths: _Paths, siblings: list[str], today: str) -> tuple[str, ...]:
    """The fewest keys that every chain from every one of ``siblings`` passes through. Among
    as few, the fewest roots (a key below a root survives that root's distrust when a
    cross-sign exists), then ``today``'s issuing CA, then by name. The siblings themselves
    when no fewer keys do, or when :data:`_MAX_COVER` keys or :data:`_MAX_TRIED` sets of them
    do not."""
    candidates = paths.above(siblings)
    tried = 0
    for size in range(1, min(len(siblings) - 1, _MAX_COVER) + 1):
        found = []
        for combo in combinations(candidates, size):
            tried += 1
            if tried > _MAX_TRIED:
                return tuple(siblings)
            if not any(paths.escapes(s, combo) for s in siblings):
                found.append(combo)
        if found:
            return min(
                found,
                key=lambda combo: (
                    sum(paths.is_root(key) for key in combo),
                    today not in combo,
                    sorted(paths.name(key) for key in combo),
                ),
            )
    return tuple(siblings)


def render(
    dataset: ScanDataset,
    suggestion: Suggestion,
    format: str,
    as_of: dt.datetime | dt.date | None = None,
) -> str:
    """``suggestion`` as a ``format`` file, once it is shown to pass `pinscan check` on
    ``dataset``: read back by pinscan's own reader and judged as its client would judge it.
    Raises :class:`SuggestError`, naming the endpoints, when the client would refuse the file or
    the connection to any of them."""
    text = write(suggestion, format)
    policies = read(text.encode(), f"<{format} pin-set>", format)
    for policy in policies:
        if policy.error:
            raise SuggestError(
                str(dataset.path),
                f"the {format} client would refuse this pin-set for {suggestion.domain}: "
                f"{policy.error}",
            )
    failing = (
        evaluate(dataset, policies, as_of)
        .filter(pl.col("verdict").is_in(["fail", "error"]))
        .join(
            dataset.endpoints.select("endpoint_id", "verified", "verify_error").collect(),
            on="endpoint_id",
            how="left",
        )
    )
    if failing.is_empty():
        return text
    domain = suggestion.domain
    n = _plural(failing.height, "endpoint")
    if failing["verified"].fill_null(False).any():  # not expected: a chain clients build
        why = f"{n} of {domain} would fail this pin-set"
    else:
        one = failing.height == 1
        their, them = ("its", "it") if one else ("their", "them")
        why = (
            f"{n} of {domain} would be locked out: {their} chain{'' if one else 's'} "
            f"{'does' if one else 'do'} not verify against the scan's trust stores, so no "
            f"client builds a chain to pin {them} by, and none of {their} own keys is in the "
            "pin-set"
        )
    fix = f"Fix {'its chain' if failing.height == 1 else 'their chains'} and scan again"
    advice = _bundle_advice(dataset, failing)
    if advice:
        fix += f" ({advice[0]})"
    if not suggestion.include_subdomains:
        pass  # the name itself is locked out: only its chain can change that
    elif domain in suggestion.names and domain not in set(failing["name"]):
        fix += f", or pin {domain} alone (--exact)"
    else:
        fix += ", or pin a narrower --domain"
    raise SuggestError(str(dataset.path), f"{why}: {_listing(failing)}. {fix}")


def _unverified_warning(
    dataset: ScanDataset, unverified: pl.DataFrame, pins_verified: bool
) -> tuple[str, str]:
    """What to say of the endpoints whose chains did not verify, true whatever the scan's stores
    were: which they are, why, and where their pins came from."""
    listing = _listing(unverified)
    if pins_verified:
        lead = (
            f"{_plural(unverified.height, 'endpoint')} did not verify against the scan's trust "
            f"stores, so clients refuse {'it' if unverified.height == 1 else 'them'} before "
            f"checking pins: {listing}"
        )
    else:
        lead = (
            f"no chain of the domain verified against the scan's trust stores ({listing}): the "
            "pins come from the chains the servers present, not from chains clients build"
        )
    advice = _bundle_advice(dataset, unverified)
    if advice is None:
        return lead, lead
    return f"{lead}; {advice[0]}", f"{lead}; {advice[1]}"


#: Kinds of `VERIFY_ERRORS` that say the issuer is missing from the scan's stores: a private CA
#: whose root the scan was not given, most often. Scans written before the kinds say only that
#: a chain did not verify, which may be that too.
_MISSING_ISSUER = frozenset({"unknown_root", "incomplete_chain"})


def _bundle_advice(dataset: ScanDataset, endpoints: pl.DataFrame) -> tuple[str, str] | None:
    """What to say of the scan's CA bundle when an issuer is missing from its stores, as the
    terminal says it and as a file does; None when no unverified endpoint's issuer is."""
    kinds = set(endpoints.filter(~pl.col("verified").fill_null(False))["verify_error"])
    if not any(kind in _MISSING_ISSUER or kind not in VERIFY_ERRORS for kind in kinds):
        return None
    if dataset.meta.get("arguments", {}).get("ca_bundle"):
        said = "the issuers they lack are in neither the scan's CA bundle nor the public stores"
        return said, said
    return (
        "if an issuer they lack is a private CA, scan again with its root in --ca-bundle",
        "if an issuer they lack is a private CA, scan again with its root as a CA bundle",
    )


def _listing(endpoints: pl.DataFrame) -> str:
    """``target: why``, the first few endpoints, and how many more."""
    rows = endpoints.sort("name", "target").head(_NAMED).iter_rows(named=True)
    items = [f"{_where(r)}: {_why(r)}" for r in rows]
    more = endpoints.height - _NAMED
    return "; ".join(items) + (f"; and {more} more" if more > 0 else "")


def _where(row: dict) -> str:
    """The endpoint as its inventory line named it, with the name judged when that differs."""
    target, name = row["target"], row["name"]
    return target if not name or name in target else f"{target} ({name})"


def _why(row: dict) -> str:
    """Why the endpoint is named: its chain's kind of `VERIFY_ERRORS` in words (scans written
    before the kinds say only that it does not verify), or the verdict's note."""
    if row["verified"]:
        return row["note"]
    return VERIFY_ERRORS.get(row["verify_error"] or "", "does not verify")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _chains(dataset: ScanDataset, endpoints: pl.LazyFrame) -> pl.LazyFrame:
    """Each endpoint's verified chain, or its presented one when it did not verify."""
    chains = dataset.chains.select("endpoint_id", "source", "position", "cert_sha256").join(
        endpoints, on="endpoint_id"
    )
    verified = chains.filter(pl.col("source") == "verified")
    presented = chains.filter(pl.col("source") == "presented").join(
        verified.select("endpoint_id").unique(), on="endpoint_id", how="anti"
    )
    certs = dataset.certificates.select("cert_sha256", "spki_sha256", "subject").unique(
        "cert_sha256"
    )
    return (
        pl.concat([verified, presented])
        .with_columns(pl.col("source").cast(pl.String))
        .join(certs, on="cert_sha256")
    )


def _keys_at(chains: pl.DataFrame, where: pl.Expr) -> pl.DataFrame:
    """Distinct keys at the positions ``where`` selects, most served first."""
    return (
        chains.filter(where)
        .group_by("spki_sha256")
        .agg(pl.col("subject").first(), endpoints=pl.col("endpoint_id").n_unique())
        .sort("endpoints", "spki_sha256", descending=[True, False])
    )


def _issuing(row: dict) -> str:
    return f"issuing CA key of {row['subject']}{_count(row)}"


def _count(row: dict) -> str:
    n = row["endpoints"]
    return f" ({n} endpoint{'s' if n != 1 else ''})"


__all__ = ["DEFAULT_LIFETIME", "BackupKey", "render", "suggest"]
