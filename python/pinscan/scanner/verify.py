# SPDX-License-Identifier: Apache-2.0
"""Verification as a client would do it, per trust store: the `Verifier` a scan uses.

Path building (pyca/cryptography, every root parsed: :mod:`~.path_builder`) is loaded at the
first path this process builds itself: a scan whose chains its verification child builds
(:mod:`~.verify_pool`) never loads it, and keeps only the stores' DER (the child's `StoreSpec`)
and the verdicts of the chains it has seen, which it judges for each name they were served for.

Name matching is done here, separately from path building, so that a certificate served under the
wrong name is reported as ``verified`` (its chain is good) with ``hostname_match`` false, instead of
one opaque failure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pinscan.errors import InputError
from pinscan.records import TRUST_STORES
from pinscan.scanner.verdicts import ChainVerdict, StoreSpec, Verdict

if TYPE_CHECKING:
    from cryptography import x509

    from pinscan.scanner.path_builder import PathBuilder


def system_bundle() -> Path | None:
    """The operating system's CA bundle, where OpenSSL's default paths point."""
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class Verifier:
    """Verifies presented chains against named trust stores.

    Each chain is verified against every store, each on its own, as each platform would: a
    policy is judged on the path its own platform builds (see :mod:`pinscan.policy.evaluate`).
    The endpoint's ``verified``, ``trust_store`` and verified chain are those of the first store,
    in order, that verifies it.

    Path building with signature checks is the expensive part, and it does not depend on the name
    the chain was served for: the path is built for a name the leaf has, and the served name is
    matched separately. So each distinct chain is verified once (an LRU cache keyed by the chain),
    and each endpoint then only matches its name against the leaf's names: a fleet serves a few
    chains (one wildcard certificate behind many names, one address under many SNIs) on many
    endpoints. The policy of each store is built once. Not thread-safe; one per scan.

    `verify` does it all in one call. A scan that builds paths in another process
    (:mod:`pinscan.scanner.verify_pool`) uses the parts: `cached`, `build` (there, from `spec`),
    `remember`, `judge`.
    """

    def __init__(
        self, spec: StoreSpec, *, now: dt.datetime | None = None, cache_size: int = 4096
    ) -> None:
        self.now = now or dt.datetime.now(dt.UTC)
        # The DER of each root, once: the paths of every chain share these bytes objects (the
        # roots given here, and those of the stores a child reads, as its verdicts come), rather
        # than a copy per path.
        self._der: dict[bytes, bytes] = {}
        #: The stores, for a verification child to load the same ones.
        self.spec = StoreSpec(
            tuple(
                (name, None if ders is None else tuple(self._der.setdefault(d, d) for d in ders))
                for name, ders in spec.stores
            )
        )
        self._cache: OrderedDict[tuple[bytes, ...], ChainVerdict] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def of_certificates(
        cls,
        stores: Sequence[tuple[str, Sequence[x509.Certificate]]],
        *,
        now: dt.datetime | None = None,
        cache_size: int = 4096,
    ) -> Verifier:
        """The verifier of named stores of roots, in order."""
        from pinscan.scanner.path_builder import ders  # the caller has pyca loaded already

        spec = StoreSpec(tuple((name, ders(roots)) for name, roots in stores))
        return cls(spec, now=now, cache_size=cache_size)

    @classmethod
    def from_spec(cls, spec: StoreSpec, *, now: dt.datetime | None = None) -> Verifier:
        """The verifier of `spec`'s stores, ready to build (a verification child's); `ValueError`
        when a root does not parse."""
        verifier = cls(spec, now=now)
        verifier.load_path_builder()
        return verifier

    # What building a path takes, made at the first chain built here: a scan whose chains a
    # child builds never needs it (a few tens of milliseconds of its start).

    @functools.cached_property
    def _builder(self) -> PathBuilder:
        # Lazy for start-up time (pyca/cryptography, every root parsed): see the module's doc.
        from pinscan.scanner.path_builder import PathBuilder

        return PathBuilder(self.spec, self.now)

    @property
    def path_builder_loaded(self) -> bool:
        """Whether building a path here is only the path's work: the roots are parsed."""
        return "_builder" in self.__dict__

    def load_path_builder(self) -> None:
        """Parses every root now rather than at the first chain built here."""
        self._builder  # noqa: B018 (the cached property does the work)

    @classmethod
    def for_scan(
        cls,
        trust_stores: Sequence[str] = tuple(TRUST_STORES),
        *,
        ca_bundle: Path | None = None,
        system_store: bool = False,
        now: dt.datetime | None = None,
    ) -> Verifier:
        """The stores of a scan, in order: ``trust_stores``, each a store pinscan ships
        (:data:`~pinscan.records.TRUST_STORES`) or ``NAME=PEM-FILE`` (a bundle standing for that
        platform's store); then ``ca_bundle`` (private PKI), then the system's."""
        # The stores pinscan ships are named, not read, here: their roots are read (pyarrow)
        # where paths are built, in the verification child as a rule.
        from pinscan.catalog.stores import known

        def bundle(path: str | Path, name: str) -> tuple[bytes, ...]:
            # A user's PEM file: pyca reads it (and says what is wrong with it) here.
            from pinscan.scanner.path_builder import ders, load_roots

            return ders(load_roots(path, name=name))

        loaded = []
        for entry in trust_stores:
            name, _, path = entry.partition("=")
            if path:
                loaded.append((name, bundle(path, name)))
            else:
                loaded.append((known(name), None))
        if ca_bundle is not None:
            loaded.append(("ca_bundle", bundle(ca_bundle, "--ca-bundle")))
        if system_store:
            found = system_bundle()
            if found is None:
                raise InputError("system", "no system CA bundle found")
            loaded.append(("system", bundle(found, "system")))
        return cls(StoreSpec(tuple(loaded)), now=now)

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
            found.stores,
        )

    def build(self, chain: Sequence[bytes]) -> ChainVerdict:
        """Build and check the path of a chain against every store; never raises."""
        return self._builder.build(chain)

    def adopt(self, chain: tuple[bytes, ...], found: ChainVerdict) -> ChainVerdict:
        """A verdict from a child, its paths sharing the bytes of ``chain`` and of the roots
        seen before, so that the cache holds one copy of each."""
        if not found.stores:
            return found
        stores = tuple((name, ok, self._shared(path, chain)) for name, ok, path in found.stores)
        path = next((p for _, ok, p in stores if ok), ())
        return dataclasses.replace(found, path=path, stores=stores)

    def _shared(self, path: Sequence[bytes], chain: Sequence[bytes]) -> tuple[bytes, ...]:
        """``path`` made of the bytes objects of the chain sent and of the roots (a path's
        certificates beyond the chain are roots of the stores: a few hundred at most)."""
        sent = {der: der for der in chain}
        return tuple(sent.get(der) or self._der.setdefault(der, der) for der in path)


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


__all__ = ["ChainVerdict", "StoreSpec", "Verdict", "Verifier", "system_bundle"]
