# SPDX-License-Identifier: Apache-2.0
"""Chain building and name checks, as a client would do them, per trust store.

The handshake accepts anything so that every chain is captured; this module then asks what a
client would conclude. pyca/cryptography's RFC 5280 path builder builds the chain from the leaf
and the intermediates the server sent to a root of the store, which the server usually never sends:
pinned clients match their pins against that built chain, so it is recorded.

Name matching is done here, separately from path building, so that a certificate served under the
wrong name is reported as ``verified`` (its chain is good) with ``hostname_match`` false, instead of
one opaque failure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification

from pinscan.errors import InputError


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    verify_error: str | None
    trust_store: str | None
    hostname_match: bool | None
    days_to_expiry: int | None
    chain: tuple[bytes, ...]


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
    (:mod:`pinscan.verify_pool`) uses the parts: `cached`, `build` (there), `remember`, `judge`.
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
            found.verified, found.error, found.trust_store, match, found.days, found.path
        )

    def build(self, chain: Sequence[bytes]) -> ChainVerdict:
        """Build and check the path of a chain against each store in turn; never raises."""
        if not chain:
            return ChainVerdict(False, "no certificate presented")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                certs = [x509.load_der_x509_certificate(der) for der in chain]
        except ValueError as exc:
            return ChainVerdict(False, f"unparsable certificate: {exc}")
        leaf = certs[0]
        days = (leaf.not_valid_after_utc - self.now).days
        names = _leaf_names(leaf)
        verifiers = self._verifiers(names)
        if verifiers is None:
            return ChainVerdict(False, "the leaf has no subjectAltName", names=names, days=days)
        errors = []
        for store_name, verifier in verifiers:
            try:
                built = verifier.verify(leaf, certs[1:])
            except verification.VerificationError as exc:
                errors.append(f"{store_name}: {exc}")
                continue
            path = tuple(c.public_bytes(Encoding.DER) for c in built)
            return ChainVerdict(True, None, store_name, names, days, path)
        return ChainVerdict(False, "; ".join(errors), names=names, days=days)

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
    """What a chain gives whatever name it is served for; ``names`` is None when unparsable."""

    verified: bool
    error: str | None
    trust_store: str | None = None
    names: list[str] | None = None
    days: int | None = None
    path: tuple[bytes, ...] = ()


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
