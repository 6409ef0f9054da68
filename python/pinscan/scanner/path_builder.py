# SPDX-License-Identifier: Apache-2.0
"""Chain building, as a client would do it, per trust store (:mod:`~.verify` has the verifier a
scan uses, which loads this module at the first path it builds itself).

The handshake accepts anything so that every chain is captured; this module then asks what a
client would conclude. pyca/cryptography's RFC 5280 path builder builds the chain from the leaf
and the intermediates the server sent to a root of the store, which the server usually never sends:
pinned clients match their pins against that built chain, so it is recorded.

A chain that does not verify gets a kind, `verify_error`, from :data:`VERIFY_ERRORS` (what a TLS
engineer calls it: incomplete chain, unknown root, self-signed, expired, ...), found by examining
the chain and the stores rather than by reading pyca's message, and a `verify_detail` that names
the certificate at fault and keeps pyca's own text after it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification

from pinscan.catalog import stores as shipped
from pinscan.errors import InputError
from pinscan.scanner.verdicts import ChainVerdict, StorePath, StoreSpec

#: What pyca's Web PKI policy accepts from a certificate's issuer (CA/Browser Forum profile).
_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
#: pyca's default `max_chain_depth`, which the path builder keeps.
_MAX_INTERMEDIATES = 8


def load_roots(path: str | Path, *, name: str) -> list[x509.Certificate]:
    """Certificates of a PEM bundle, as trust anchors; `InputError` when there are none."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(str(path), exc.strerror or str(exc)) from None
    with warnings.catch_warnings():
        # Mozilla's store holds a root with a negative serial; pyca warns about it on load.
        warnings.simplefilter("ignore")
        try:
            roots = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise InputError(str(path), f"not a PEM bundle of certificates ({exc})") from None
    if not roots:
        raise InputError(str(path), f"no certificates in the {name} trust store")
    return roots


def ders(certificates: Sequence[x509.Certificate]) -> tuple[bytes, ...]:
    """The DER of each certificate, in order."""
    return tuple(cert.public_bytes(Encoding.DER) for cert in certificates)


class PathBuilder:
    """Builds and checks a chain's path against each store of a `StoreSpec`, each on its own
    (the path one platform builds is not another's), every root parsed up front."""

    def __init__(self, spec: StoreSpec, now: dt.datetime) -> None:
        self.now = now
        # A store pinscan ships is read from the installed file here (see `StoreSpec`).
        named = [(n, shipped.roots(n) if ders is None else ders) for n, ders in spec.stores]
        # The stores' roots by their DER: a path built here ends at these bytes objects, not at
        # copies.
        self._der = {der: der for _, roots in named for der in roots}
        # Each root parsed once, however many stores hold it (most are in several).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a root with a negative serial (see `load_roots`)
            parsed = {der: x509.load_der_x509_certificate(der) for der in self._der}
        stores = [(name, [parsed[der] for der in roots]) for name, roots in named]
        keys = {der: _loose(cert.subject) for der, cert in parsed.items()}
        policy = verification.PolicyBuilder().time(now)
        self._policies = [(name, policy.store(verification.Store(certs))) for name, certs in stores]
        # Each store's roots by their subject's `_loose` key, with their place in the store.
        self._reachable: list[dict[tuple, list[tuple[int, bytes]]]] = []
        for _, der_roots in named:
            index: dict[tuple, list[tuple[int, bytes]]] = {}
            for place, der in enumerate(der_roots):
                index.setdefault(keys[der], []).append((place, der))
            self._reachable.append(index)
        # Every store's roots by subject: where a chain that failed is examined for its issuer.
        self._anchors: dict[x509.Name, list[x509.Certificate]] = {}
        for _, roots in stores:
            for root in roots:
                self._anchors.setdefault(root.subject, []).append(root)

    def build(self, chain: Sequence[bytes]) -> ChainVerdict:
        """Build and check the path of a chain against every store; never raises."""
        if not chain:
            return ChainVerdict(False, "no_certificate", detail="the server sent no certificate")
        certs = []
        for position, der in enumerate(chain):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    certs.append(x509.load_der_x509_certificate(der))
            except ValueError as exc:
                return ChainVerdict(
                    False, "malformed", detail=f"certificate {position} does not parse: {exc}"
                )
        leaf = certs[0]
        days = (leaf.not_valid_after_utc - self.now).days
        names = _leaf_names(leaf)
        subject = self._subject_for(names)
        if subject is None:
            detail = (
                "no name in the leaf's subjectAltName is a valid DNS name or IP: "
                + ", ".join(names)
                if names
                else "the leaf has no DNS name or IP in a subjectAltName (clients ignore the CN)"
            )
            return ChainVerdict(False, "no_san", names=names, days=days, detail=detail)
        # Every store, each on its own: the path one platform builds is not another's (a
        # cross-signed intermediate leads to different roots), and a policy is judged on its own
        # platform's. Stores that hold the same roots within the chain's reach build the same
        # path, so pyca builds it once for them; stores with none fail without it.
        built: dict[int, tuple[bytes, ...] | str] = {}  # store -> its path, or pyca's message
        unanchored: list[int] = []
        for reach, members in self._alike(certs):
            if reach:
                answer = self._build_one(members[0], subject, certs, chain)
                built.update(dict.fromkeys(members, answer))
            else:
                unanchored = members
        if unanchored and not any(isinstance(a, tuple) for a in built.values()):
            # No store verifies: pyca's own words, for the detail.
            answer = self._build_one(unanchored[0], subject, certs, chain)
            built.update((i, answer) for i in unanchored)
        paths: list[StorePath] = []
        errors: dict[str, list[str]] = {}
        for i, (store_name, _) in enumerate(self._policies):
            answer = built.get(i, "")
            if isinstance(answer, tuple):
                paths.append((store_name, True, answer))
            else:
                paths.append((store_name, False, ()))
                errors.setdefault(answer, []).append(store_name)
        first = next((p for p in paths if p[1]), None)
        if first is not None:
            return ChainVerdict(True, None, first[0], names, days, first[2], stores=tuple(paths))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyca warns when it reads a DSA key
                kind, what = self._diagnose(certs)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # a field pyca cannot read
            kind, what = "invalid_chain", f"a certificate of the chain cannot be examined ({exc})"
        # Stores that failed alike are named together: "mozilla, android: <pyca's message>".
        said = "; ".join(f"{', '.join(stores)}: {message}" for message, stores in errors.items())
        detail = f"{what} (pyca: {said})"
        return ChainVerdict(False, kind, names=names, days=days, detail=detail, stores=tuple(paths))

    def _shared(self, path: Sequence[bytes], chain: Sequence[bytes]) -> tuple[bytes, ...]:
        """``path`` made of the bytes objects of the chain sent and of the stores' roots."""
        sent = {der: der for der in chain}
        return tuple(sent.get(der) or self._der.get(der) or der for der in path)

    def _diagnose(self, certs: list[x509.Certificate]) -> tuple[str, str]:
        """Why a chain that no store verified fails, as a kind of `VERIFY_ERRORS` and a sentence
        naming the certificate at fault. The path is walked from the leaf through what was sent,
        issuer by issuer (name and key identifier, as OpenSSL picks issuers), to a root of the
        stores; the first problem on it, in the order a client meets them, is the answer."""
        leaf = certs[0]

        def who(cert: x509.Certificate) -> str:
            role = "leaf" if cert is leaf else "root" if _self_issued(cert) else "intermediate"
            return f'the {role} "{_subject_text(cert.subject)}"'

        path = [leaf]
        while not _self_issued(path[-1]):
            issuer = next(
                (c for c in certs if all(c is not p for p in path) and _issued_by(path[-1], c)),
                None,
            )
            if issuer is None:
                break
            path.append(issuer)
        top = path[-1]
        if _self_issued(top):
            if not any(a == top for a in self._anchors.get(top.subject, ())):
                if top is leaf:
                    return "self_signed", f"{who(top)} is self-signed, and no trust store has it"
                return "unknown_root", f"the chain ends at {who(top)}, which no trust store has"
            # The server sent the root; a self-signed leaf in a store is its own anchor.
            sent, anchor = (path if top is leaf else path[:-1]), top
        else:
            anchor = next(
                (a for a in self._anchors.get(top.issuer, ()) if _issued_by(top, a)), None
            )
            if anchor is None:
                issuer = f'"{_subject_text(top.issuer)}"'
                if top is leaf:
                    return (
                        "incomplete_chain",
                        f"the server did not send the leaf's issuer {issuer}, and no trust store "
                        "has it as a root",
                    )
                return (
                    "unknown_root",
                    f"the issuer of {who(top)}, {issuer}, was not sent and no trust store has it",
                )
            sent = path
        for cert in sent:
            if cert.not_valid_after_utc < self.now:
                return (
                    "expired",
                    f"{who(cert)} expired {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                )
            if cert.not_valid_before_utc > self.now:
                start = f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
                return "not_yet_valid", f"{who(cert)} is not valid before {start}"
        for cert, issuer in zip(sent, [*sent[1:], anchor], strict=True):
            weak = _weak_algorithm(cert, issuer)
            if weak:
                return "unsupported_algorithm", f"{who(cert)}: {weak}"
            try:
                cert.verify_directly_issued_by(issuer)
            except InvalidSignature:
                return (
                    "bad_signature",
                    f"the signature on {who(cert)} does not verify with the key of {who(issuer)}",
                )
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                return "unsupported_algorithm", f"the signature on {who(cert)}: {exc}"
        return "invalid_chain", _broken_rule(sent, who)

    def _subject_for(
        self, names: list[str]
    ) -> verification.DNSName | verification.IPAddress | None:
        """The first name of the leaf that pyca accepts, to build the path for: a good chain
        under the wrong name still verifies; the name it was served for is judged by
        `hostname_match`. Which names pyca refuses does not depend on the store."""
        for name in names:
            subject = _subject(name)
            if subject is None:
                continue
            try:
                if self._policies:
                    self._policies[0][1].build_server_verifier(subject)
            except ValueError:  # a name pyca's policy refuses (an underscore, a trailing dot)
                continue
            return subject
        return None

    def _alike(self, certs: list[x509.Certificate]) -> list[tuple[tuple, list[int]]]:
        """The stores in groups that build the same path for ``certs``, as (the roots in
        reach, the stores): pyca's path builder looks a store up only by the subject of a
        certificate it holds (a sent certificate's issuer, or a sent certificate itself), so
        stores holding the same such roots, in the same order, are the same store to it. The
        group with no root in reach cannot verify."""
        try:
            wanted = {_loose(n) for c in certs for n in (c.issuer, c.subject)}
        except ValueError:  # a name pyca's Python side cannot read: each store on its own
            return [((i,), [i]) for i in range(len(self._reachable))]
        groups: dict[tuple, list[int]] = {}
        for i, index in enumerate(self._reachable):
            reach = tuple(der for _, der in sorted(r for k in wanted for r in index.get(k, ())))
            groups.setdefault(reach, []).append(i)
        return list(groups.items())

    def _build_one(
        self,
        store: int,
        subject: verification.DNSName | verification.IPAddress,
        certs: list[x509.Certificate],
        chain: Sequence[bytes],
    ) -> tuple[bytes, ...] | str:
        """The path store ``store`` builds (DER), or pyca's message when it builds none."""
        verifier = self._policies[store][1].build_server_verifier(subject)
        try:
            path = verifier.verify(certs[0], certs[1:])
        except verification.VerificationError as exc:
            return str(exc)
        return self._shared([c.public_bytes(Encoding.DER) for c in path], chain)


def _loose(name: x509.Name) -> tuple:
    """A name as a key that is equal whenever pyca could take two names for one: attributes in
    any order or grouping, any string type, any case. Looser than pyca's own matching, never
    stricter: the roots it puts in a chain's reach include every root pyca could reach."""
    return tuple(sorted((a.oid.dotted_string, str(a.value).casefold()) for a in name))


def _subject_text(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty subject)"


def _broken_rule(sent: list[x509.Certificate], who: Callable[[x509.Certificate], str]) -> str:
    """The RFC 5280 rule a path of good dates, keys and signatures breaks, where it is one of
    those servers get wrong; pyca's message (in the detail) names the others."""
    leaf, issuers = sent[0], sent[1:]
    if len(issuers) > _MAX_INTERMEDIATES:
        return (
            f"the chain has {len(issuers)} intermediates; path builders stop at "
            f"{_MAX_INTERMEDIATES}"
        )
    if _basic_constraints(leaf).ca:
        return f"{who(leaf)} is a CA certificate (basicConstraints cA), not a server's"
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        usages = None
    if usages is not None and x509.ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        return f"{who(leaf)} is not for TLS servers (no serverAuth in extendedKeyUsage)"
    for issuer in issuers:
        if not _basic_constraints(issuer).ca:
            return (
                f"{who(issuer)} issues the certificate below it but is not a CA (basicConstraints)"
            )
    return "a certificate of the chain breaks a rule of RFC 5280 or of the Web PKI profile"


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return x509.BasicConstraints(ca=False, path_length=None)


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _key_id(cert: x509.Certificate, kind: type) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return None
    return value.key_identifier if kind is x509.AuthorityKeyIdentifier else value.digest


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` is named as the issuer of ``cert``: its subject, and its key
    identifier when both certificates have one."""
    if cert.issuer != issuer.subject:
        return False
    wanted = _key_id(cert, x509.AuthorityKeyIdentifier)
    have = _key_id(issuer, x509.SubjectKeyIdentifier)
    return wanted is None or have is None or wanted == have


def _weak_algorithm(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """What the Web PKI refuses in the signature on ``cert``: the issuer's key, or the hash
    (pyca checks the keys that sign, not the leaf's own)."""
    try:
        key = issuer.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"its issuer's key cannot be read ({exc})"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            return f"signed with a {key.key_size}-bit RSA key (the Web PKI wants 2048 bits or more)"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            return f"signed with a {key.curve.name} key (the Web PKI allows P-256, P-384, P-521)"
    else:
        kind = type(key).__name__.removesuffix("PublicKey").lstrip("_")
        return f"signed with a key of type {kind}, which the Web PKI does not allow"
    try:
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        digest = None
    if not isinstance(digest, _HASHES):
        name = digest.name.upper() if digest else cert.signature_algorithm_oid.dotted_string
        return f"signed with {name} (the Web PKI allows SHA-256, SHA-384, SHA-512)"
    return None


def _leaf_names(leaf: x509.Certificate) -> list[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return []
    dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    return dns + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _subject(name: str | None) -> verification.DNSName | verification.IPAddress | None:
    if name is None:
        return None
    try:
        return verification.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    # A wildcard name stands for any one label: build the path for one such name.
    concrete = f"pinscan-verify.{name[2:]}" if name.startswith("*.") else name
    try:
        return verification.DNSName(concrete)
    except ValueError:
        return None


__all__ = ["PathBuilder", "ders", "load_roots"]
