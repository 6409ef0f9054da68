# SPDX-License-Identifier: Apache-2.0
"""Chain building and name checks, as a client would do them, per trust store.

The handshake accepts anything so that every chain is captured; this module then asks what a
client would conclude. pyca/cryptography's RFC 5280 path builder builds the chain from the leaf
and the intermediates the server sent to a root of the store, which the server usually never sends:
pinned clients match their pins against that built chain, so it is recorded.

Name matching is done here, separately from path building, so that a certificate served under the
wrong name is reported as ``verified`` (its chain is good) with ``hostname_match`` false, instead of
one opaque failure.

A chain that does not verify gets a kind, `verify_error`, from :data:`VERIFY_ERRORS` (what a TLS
engineer calls it: incomplete chain, unknown root, self-signed, expired, ...), found by examining
the chain and the stores rather than by reading pyca's message, and a `verify_detail` that names
the certificate at fault and keeps pyca's own text after it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification

from pinscan.errors import InputError

#: What pyca's Web PKI policy accepts from a certificate's issuer (CA/Browser Forum profile).
_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
#: pyca's default `max_chain_depth`, which `Verifier` keeps.
_MAX_INTERMEDIATES = 8


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    verify_error: str | None
    trust_store: str | None
    hostname_match: bool | None
    days_to_expiry: int | None
    chain: tuple[bytes, ...]
    verify_detail: str | None = None


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


def system_bundle() -> Path | None:
    """The operating system's CA bundle, where OpenSSL's default paths point."""
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class Verifier:
    """Verifies presented chains against named trust stores, tried in order.

    Path building with signature checks is the expensive part, and it does not depend on the name
    the chain was served for: the path is built for a name the leaf has, and the served name is
    matched separately. So each distinct chain is verified once (an LRU cache keyed by the chain),
    and each endpoint then only matches its name against the leaf's names: a fleet serves a few
    chains (one wildcard certificate behind many names, one address under many SNIs) on many
    endpoints. The policy of each store is built once. Not thread-safe; one per scan.

    `verify` does it all in one call. A scan that builds paths in another process
    (:mod:`pinscan.scanner.verify_pool`) uses the parts: `cached`, `build` (there), `remember`,
    `judge`.
    """

    def __init__(
        self,
        stores: Sequence[tuple[str, Sequence[x509.Certificate]]],
        *,
        now: dt.datetime | None = None,
        cache_size: int = 4096,
        spec: StoreSpec | None = None,
    ) -> None:
        self.now = now or dt.datetime.now(dt.UTC)
        #: How to load the same stores elsewhere; None when they were given as certificates.
        self.spec = spec
        builder = verification.PolicyBuilder().time(self.now)
        self._policies = [
            (name, builder.store(verification.Store(list(roots)))) for name, roots in stores
        ]
        # Every store's roots by subject: where a chain that failed is examined for its issuer.
        self._anchors: dict[x509.Name, list[x509.Certificate]] = {}
        for _, roots in stores:
            for root in roots:
                self._anchors.setdefault(root.subject, []).append(root)
        self._cache: OrderedDict[tuple[bytes, ...], ChainVerdict] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def for_scan(
        cls,
        *,
        ca_bundle: Path | None = None,
        system_store: bool = False,
        now: dt.datetime | None = None,
    ) -> Verifier:
        """Mozilla's roots (certifi), then ``ca_bundle`` (private PKI), then the system store."""
        stores = [("mozilla", load_roots(certifi.where(), name="mozilla"))]
        if ca_bundle is not None:
            stores.append(("ca_bundle", load_roots(ca_bundle, name="--ca-bundle")))
        if system_store:
            bundle = system_bundle()
            if bundle is None:
                raise InputError("system", "no system CA bundle found")
            stores.append(("system", load_roots(bundle, name="system")))
        return cls(stores, now=now, spec=StoreSpec(ca_bundle, system_store))

    def verify(self, chain: Sequence[bytes], name: str | None) -> Verdict:
        """Verdict for a presented chain (leaf first) served for ``name`` (SNI or IP)."""
        key = tuple(chain)
        found = self.cached(key)
        if found is None:
            found = self.build(key)
            self.remember(key, found)
        return self.judge(found, name)

    def cached(self, chain: tuple[bytes, ...]) -> ChainVerdict | None:
        found = self._cache.get(chain)
        if found is not None:
            self._cache.move_to_end(chain)
        return found

    def remember(self, chain: tuple[bytes, ...], found: ChainVerdict) -> None:
        self._cache[chain] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    @staticmethod
    def judge(found: ChainVerdict, name: str | None) -> Verdict:
        """The verdict of a chain's path for the name it was served under."""
        names = found.names
        match = _matches(name, names) if name and names is not None else None
        return Verdict(
            found.verified,
            found.error,
            found.trust_store,
            match,
            found.days,
            found.path,
            found.detail,
        )

    def build(self, chain: Sequence[bytes]) -> ChainVerdict:
        """Build and check the path of a chain against each store in turn; never raises."""
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
        verifiers = self._verifiers(names)
        if verifiers is None:
            detail = (
                "no name in the leaf's subjectAltName is a valid DNS name or IP: "
                + ", ".join(names)
                if names
                else "the leaf has no DNS name or IP in a subjectAltName (clients ignore the CN)"
            )
            return ChainVerdict(False, "no_san", names=names, days=days, detail=detail)
        errors = []
        for store_name, verifier in verifiers:
            try:
                built = verifier.verify(leaf, certs[1:])
            except verification.VerificationError as exc:
                errors.append(f"{store_name}: {exc}")
                continue
            path = tuple(c.public_bytes(Encoding.DER) for c in built)
            return ChainVerdict(True, None, store_name, names, days, path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyca warns when it reads a DSA key
                kind, what = self._diagnose(certs)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # a field pyca cannot read
            kind, what = "invalid_chain", f"a certificate of the chain cannot be examined ({exc})"
        detail = f"{what} (pyca: {'; '.join(errors)})"
        return ChainVerdict(False, kind, names=names, days=days, detail=detail)

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

    def _verifiers(self, names: list[str]) -> list[tuple[str, verification.ServerVerifier]] | None:
        """One verifier per store, for the first name of the leaf that pyca accepts: the path is
        built for a name the leaf has, so a good chain under the wrong name still verifies; the
        name it was served for is judged by `hostname_match`."""
        for name in names:
            subject = _subject(name)
            if subject is None:
                continue
            try:
                return [
                    (store, policy.build_server_verifier(subject))
                    for store, policy in self._policies
                ]
            except ValueError:  # a name pyca's policy refuses (an underscore, a trailing dot)
                continue
        return None


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """The trust stores of `Verifier.for_scan`, as arguments another process can load them from."""

    ca_bundle: Path | None = None
    system_store: bool = False


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What a chain gives whatever name it is served for; ``names`` is None when unparsable.
    ``error`` is a kind of `VERIFY_ERRORS`, ``detail`` says which certificate and why."""

    verified: bool
    error: str | None
    trust_store: str | None = None
    names: list[str] | None = None
    days: int | None = None
    path: tuple[bytes, ...] = ()
    detail: str | None = None


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


def _matches(name: str, names: list[str]) -> bool:
    """RFC 6125 6.4: exact match, or a wildcard as the whole left-most label; IPs match exactly."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return any(_same_ip(ip, n) for n in names)
    name = name.lower().rstrip(".")
    for pattern in names:
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name:
            label, rest = name.split(".", 1)
            if label and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False


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
