# SPDX-License-Identifier: Apache-2.0
"""CA certificates to catalog rows: what each certificate is (through the Rust core), what it
may issue (its EKU), who signed it (issuer links checked by signature), its roots and its owner.

The build script (``scripts/build_ca_catalog.py``) derives the shipped catalog with these
functions, and :meth:`pinscan.catalog.graph.Catalog.with_pems` derives a private PKI's rows the
same way, so an internal CA is linked exactly as a public one.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from pinscan import _core
from pinscan.catalog import der
from pinscan.certs.table import certificates

#: The platform stores whose roots the catalog marks, in the ``trusted_by`` and
#: ``distrusted_by`` columns.
STORES = ("android", "apple", "java", "microsoft", "mozilla")
#: Let's Encrypt's status of a CA (``le_status``): the sections of its certificates page.
#: ``root`` marks its root CAs; the others are its intermediates.
LE_STATUSES = ("active", "backup", "retired", "expired", "root")
#: Where a catalog row comes from (``sources``): ``local`` for a PEM bundle the user gave.
SOURCES = ("ccadb", "letsencrypt", "trust_stores", "local")

_LIST = pl.List(pl.String)
_TIME = pl.Datetime("us", "UTC")

#: The catalog's columns: one row per CA certificate, sorted by ``owner``, ``spki_sha256``,
#: ``cert_sha256``.
SCHEMA = pl.Schema(
    {
        # The CA's key: the pin, exactly as the core computes it (base64 SHA-256 of the SPKI).
        "spki_sha256": pl.String,
        # The legacy SHA-1 pin of the same bytes (OkHttp's `sha1/`, HPKP's): a client pinning a
        # CA this way must find it on a chain the scan never saw.
        "spki_sha1": pl.String,
        "cert_sha256": pl.String,
        # The subject's commonName (see `display_name`), else its OU, else its O.
        "name": pl.String,
        "organization": pl.String,
        "subject": pl.String,
        "issuer": pl.String,
        "key_type": pl.String,
        "key_bits": pl.UInt32,
        "curve": pl.String,
        "not_before": _TIME,
        "not_after": _TIME,
        "ski": pl.String,
        "aki": pl.String,
        "path_len": pl.UInt32,
        # The EKU extension's usages (short names, else OIDs); null when it has none.
        "eku": _LIST,
        # EKU serverAuth, anyExtendedKeyUsage or no EKU; null when the EKU cannot be read.
        "can_issue_tls": pl.Boolean,
        "self_signed": pl.Boolean,
        # The key whose signature this certificate carries (its own for a self-signed one);
        # null when no certificate in the catalog has a key that verifies it.
        "issuer_spki_sha256": pl.String,
        # The self-signed keys reachable by following issuers, cross-signs included (revoked
        # certificates excluded, expired ones kept): its own pin for a root.
        "root_spki_sha256": _LIST,
        # The family: the organization of the nearest root (see `owners`).
        "owner": pl.String,
        "le_name": pl.String,
        "le_status": pl.Enum(list(LE_STATUSES)),
        "trusted_by": _LIST,
        "distrusted_by": _LIST,
        # Known revoked: only Let's Encrypt publishes this among the sources.
        "revoked": pl.Boolean,
        "sources": _LIST,
    }
)

_CORE_COLUMNS = [
    "spki_sha256",
    "spki_sha1",
    "cert_sha256",
    "subject",
    "issuer",
    "key_type",
    "key_bits",
    "curve",
    "not_before",
    "not_after",
    "ski",
    "aki",
    "path_len",
]


def attributes(name: str | None) -> list[tuple[str, str]]:
    """The (type, value) pairs of an RFC 4514 name as the Rust core writes it, in its order
    (most specific first), escapes undone."""
    if not name:
        return []
    pairs: list[tuple[str, str]] = []
    current: list[str] = []
    chars = iter(name)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if escaped == "0":  # the core writes NUL as \00
                next(chars, "")
                current.append("\0")
            else:
                current.append(escaped)
        elif char in ",+":
            pairs.append(_pair("".join(current)))
            current = []
        else:
            current.append(char)
    pairs.append(_pair("".join(current)))
    return pairs


def _pair(text: str) -> tuple[str, str]:
    kind, _, value = text.partition("=")
    return kind, value


def display_name(subject: str | None) -> str | None:
    """What a CA is called: its commonName (with its OU when the CN only repeats the O, as
    Amazon's ``CN=Amazon, OU=Server CA 1B`` does), else its OU, else its O."""
    found = dict(reversed(attributes(subject)))  # the first of each type wins
    common, unit, org = found.get("CN"), found.get("OU"), found.get("O")
    if common and unit and common == org:
        return f"{common} {unit}"
    return common or unit or org or subject


def organization(name: str | None) -> str | None:
    """The first O of an RFC 4514 name."""
    return next((value for kind, value in attributes(name) if kind == "O"), None)


def certificate_rows(ders: Sequence[bytes], source: str) -> pl.DataFrame:
    """The catalog rows of CA certificates, in :data:`SCHEMA`, with issuer links among them.

    Certificates that are neither CAs (basicConstraints cA) nor self-signed are left out (OCSP
    responders, the leaves a store blocks), as are duplicates and certificates the core cannot
    pin. ``source`` is one of :data:`SOURCES`. ``root_spki_sha256`` and ``owner`` are left null:
    :func:`link` fills them over the whole catalog.
    """
    unique = list(dict.fromkeys(ders))
    table = certificates(unique, sha1=True)
    pinned = table["spki_sha256"].is_not_null().to_list()
    unique = [d for d, ok in zip(unique, pinned, strict=True) if ok]
    table = table.filter(pl.col("spki_sha256").is_not_null())
    issuers = _issuer_keys(unique, table)
    usages = [_eku(d) for d in unique]
    frame = table.select(_CORE_COLUMNS).with_columns(
        pl.Series("eku", [u[0] for u in usages], dtype=_LIST),
        pl.Series("can_issue_tls", [u[1] for u in usages], dtype=pl.Boolean),
        pl.Series("issuer_spki_sha256", issuers, dtype=pl.String),
        is_ca=table["is_ca"],
    )
    frame = frame.with_columns(
        self_signed=pl.col("issuer_spki_sha256").eq_missing(pl.col("spki_sha256")),
        name=pl.col("subject").map_elements(display_name, return_dtype=pl.String),
        organization=pl.col("subject").map_elements(organization, return_dtype=pl.String),
    )
    frame = frame.filter(pl.col("is_ca").fill_null(False) | pl.col("self_signed"))
    return frame.with_columns(
        pl.lit(None, _LIST).alias("root_spki_sha256"),
        pl.lit(None, pl.String).alias("owner"),
        pl.lit(None, pl.String).alias("le_name"),
        pl.lit(None, SCHEMA["le_status"]).alias("le_status"),
        pl.lit([], _LIST).alias("trusted_by"),
        pl.lit([], _LIST).alias("distrusted_by"),
        pl.lit(False).alias("revoked"),
        pl.lit([source], _LIST).alias("sources"),
    ).select(SCHEMA.names())


def _eku(certificate: bytes) -> tuple[list[str] | None, bool | None]:
    """The EKU list and whether it lets the CA issue TLS server certificates (``None`` when the
    extension cannot be read)."""
    try:
        usages = der.eku(certificate)
    except der.DerError:
        return None, None
    if usages is None:
        return None, True
    return list(usages), "server_auth" in usages or "any" in usages


def _issuer_keys(ders: Sequence[bytes], table: pl.DataFrame) -> list[str | None]:
    """For each certificate, the pin of the key that signed it, among the keys of ``ders``.

    The candidates are the certificates whose subject is its issuer and, when both say, whose
    SKI is its AKI; its own key is tried first (a self-signed certificate), then the others in
    pin order. A candidate is the issuer only if its key verifies the signature.
    """
    spkis: dict[str, bytes] = {}
    by_subject: dict[str, dict[str, set[str | None]]] = collections.defaultdict(dict)
    rows = table.select("spki_sha256", "subject", "issuer", "ski", "aki").rows()
    for certificate, (pin, subject, _, ski, _) in zip(ders, rows, strict=True):
        if pin not in spkis:
            spkis[pin] = _core.locate_spki(certificate)[1]
        if subject is not None:
            by_subject[subject].setdefault(pin, set()).add(ski)
    found: list[str | None] = []
    for certificate, (pin, _, issuer, _, aki) in zip(ders, rows, strict=True):
        candidates = by_subject.get(issuer, {}) if issuer is not None else {}
        keys = [
            key for key, skis in candidates.items() if aki is None or None in skis or aki in skis
        ]
        keys.sort(key=lambda key: (key != pin, key))
        found.append(_signer(certificate, keys, spkis))
    return found


def _signer(certificate: bytes, keys: list[str], spkis: Mapping[str, bytes]) -> str | None:
    if not keys:
        return None
    try:
        signed = der.signed(certificate)
    except der.DerError:
        return None
    return next((key for key in keys if der.signed_by(signed, spkis[key])), None)


def link(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``root_spki_sha256`` and ``owner`` derived over all its rows' links.

    The graph is over keys (several certificates of one key are one CA): an edge for every
    certificate that is not revoked, from its key to its issuer's. A root is a key with a
    self-signed certificate. The owner is the organization (O, else the name) of the nearest
    root; several at the same distance are decided by the number of stores that trust them, then
    by pin. Let's Encrypt's roots (``le_status`` ``root``) are one family named after the oldest
    one, since its page lists them as one hierarchy though Gen Y's say ``O=ISRG``. A key with no
    root in the catalog is owned by the O of the issuer named by the highest certificate found.
    """
    parents: dict[str, set[str]] = collections.defaultdict(set)
    for child, parent in (
        frame.filter(~pl.col("revoked") & ~pl.col("self_signed"))
        .select("spki_sha256", "issuer_spki_sha256")
        .drop_nulls()
        .unique()
        .rows()
    ):
        parents[child].add(parent)
    roots = _root_names(frame)
    # A key with no root: the organization its highest certificate names as issuer, spelled as
    # a family with roots spells it.
    spellings = {family_key(name): name for _, name in roots.values()}
    unrooted = {
        pin: spellings.get(family_key(named), named)
        for pin, named in _issuer_organizations(frame).items()
        if named
    }
    pins = frame["spki_sha256"].unique().to_list()
    reached = {pin: _levels(pin, parents) for pin in pins}
    found_roots = {
        pin: sorted(key for level in levels for key in level if key in roots)
        for pin, levels in reached.items()
    }
    owners = {pin: _owner(levels, roots, unrooted) for pin, levels in reached.items()}
    return frame.with_columns(
        root_spki_sha256=pl.col("spki_sha256").replace_strict(found_roots, return_dtype=_LIST),
        owner=pl.col("spki_sha256").replace_strict(owners, return_dtype=pl.String),
    )


def _levels(pin: str, parents: Mapping[str, set[str]]) -> list[list[str]]:
    """The keys above ``pin`` by distance (``pin`` itself first), each once."""
    seen = {pin}
    levels = [[pin]]
    while True:
        above = sorted({p for key in levels[-1] for p in parents.get(key, ()) if p not in seen})
        if not above:
            return levels
        seen.update(above)
        levels.append(above)


def _root_names(frame: pl.DataFrame) -> dict[str, tuple[int, str]]:
    """Each root key's (number of stores trusting it, negated for sorting; family name)."""
    roots = frame.filter(pl.col("self_signed"))
    le_roots = roots.filter(pl.col("le_status") == "root").sort("not_before", "cert_sha256")
    le_family = _family(le_roots.row(0, named=True)) if le_roots.height else None
    by_key = roots.sort("spki_sha256", "not_before", "cert_sha256", descending=[False, True, False])
    found: dict[str, tuple[int, str]] = {}
    for (pin,), group in by_key.group_by("spki_sha256", maintain_order=True):
        newest = group.row(0, named=True)
        stores = set(group["trusted_by"].explode().drop_nulls().to_list())
        name = le_family if newest["le_status"] == "root" and le_family else _family(newest)
        found[str(pin)] = (-len(stores), name)
    # One spelling per family: "DigiCert Inc" and "DigiCert, Inc." are one owner, named as the
    # root most stores trust (then the most roots) spells it.
    spellings: dict[str, collections.Counter[tuple[int, str]]] = collections.defaultdict(
        collections.Counter
    )
    for stores, name in found.values():
        spellings[family_key(name)][(stores, name)] += 1
    chosen = {
        key: min(counts, key=lambda s: (s[0], -counts[s], s[1]))[1]
        for key, counts in spellings.items()
    }
    return {pin: (stores, chosen[family_key(name)]) for pin, (stores, name) in found.items()}


#: Legal forms a family key drops from the end of an organization's name.
_LEGAL_FORMS = frozenset(
    ("ab", "ag", "as", "bv", "co", "company", "corp", "corporation", "gmbh", "inc", "kk",
     "limited", "llc", "ltd", "nv", "oy", "plc", "sa", "sas", "sl", "spa", "srl")
)  # fmt: skip


def family_key(name: str) -> str:
    """What two spellings of one organization share: case, punctuation and a trailing legal
    form ("Inc.", "nv-sa", "CO.,LTD.") dropped."""
    words = re.sub(r"[\W_]+", " ", name.casefold()).split()
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    return " ".join(words)


def _family(row: Mapping[str, object]) -> str:
    return str(row["organization"] or row["name"] or row["subject"])


def _issuer_organizations(frame: pl.DataFrame) -> dict[str, str]:
    """Each key's issuer organization (from the issuer name of its oldest certificate)."""
    named = frame.sort("not_before", "cert_sha256").unique("spki_sha256", keep="first")
    return {
        pin: organization(issuer) or display_name(issuer) or ""
        for pin, issuer in named.select("spki_sha256", "issuer").rows()
    }


def _owner(
    levels: list[list[str]], roots: Mapping[str, tuple[int, str]], unrooted: Mapping[str, str]
) -> str | None:
    for level in levels:
        nearest = sorted((roots[key], key) for key in level if key in roots)
        if nearest:
            return nearest[0][0][1]
    return unrooted.get(levels[-1][0])


def with_annotations(
    frame: pl.DataFrame,
    *,
    le: Mapping[str, tuple[str, str]],
    le_keys: Mapping[str, tuple[str, str]],
    revoked: Iterable[str],
    trusted: Mapping[str, Iterable[str]],
    distrusted: Mapping[str, Iterable[str]],
    sources: Mapping[str, Iterable[str]],
) -> pl.DataFrame:
    """``frame`` with what the sources say beyond the certificates, by fingerprint: Let's
    Encrypt's name and status (``le``: fingerprint -> (name, status); ``le_keys`` by pin for its
    keys' other certificates), the certificates it lists as revoked, the stores that trust or
    distrust each certificate, and where each was found."""

    def by(column: str, mapping: Mapping[str, tuple[str, str]], index: int) -> pl.Expr:
        values = {key: value[index] for key, value in mapping.items()}
        return pl.col(column).replace_strict(values, default=None, return_dtype=pl.String)

    def listed(mapping: Mapping[str, Iterable[str]]) -> pl.Expr:
        values = {fp: sorted(set(v)) for fp, v in mapping.items()}
        return pl.col("cert_sha256").replace_strict(values, default=[], return_dtype=_LIST)

    return frame.with_columns(
        le_name=pl.coalesce(by("cert_sha256", le, 0), by("spki_sha256", le_keys, 0)),
        le_status=pl.coalesce(by("cert_sha256", le, 1), by("spki_sha256", le_keys, 1)).cast(
            SCHEMA["le_status"]
        ),
        revoked=pl.col("cert_sha256").is_in(set(revoked)),
        trusted_by=listed(trusted),
        distrusted_by=listed(distrusted),
        sources=listed(sources),
    )


def finish(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows linked (:func:`link`), in :data:`SCHEMA`'s order, sorted as the catalog is."""
    return link(frame).select(SCHEMA.names()).sort("owner", "spki_sha256", "cert_sha256")
