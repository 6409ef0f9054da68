# SPDX-License-Identifier: Apache-2.0
"""Offline Certificate Transparency for the tests: certificates and precertificates, a fake
RFC 6962 log, a static-ct-api tile tree on disk, a fake crt.sh and a v3 log list, all served by
``http.server`` on 127.0.0.1 port 0 in a thread.

The RFC 6962 log caps batches, can answer 503 a given number of times, sign badly, sign a wrong
root or a smaller tree; the tile tree writes partial tiles for its checkpoint and can drop them
(as logs may once the full tile exists). Everything is deterministic apart from certificate
serials; the log keys are derived from fixed scalars.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import hashlib
import json
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from pinscan.ct.merkle import leaf_hash, node_hash, tree_root
from pinscan.ct.tiles import WIDTH, tile_path

DER = serialization.Encoding.DER
SCT_LIST_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

# --- certificates ---------------------------------------------------------------------------


def key(seed: int) -> ec.EllipticCurvePrivateKey:
    """A P-256 key fixed by ``seed``: same pins in every run."""
    return ec.derive_private_key(0x5EED0000 + seed, ec.SECP256R1())


def spki(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pin(k: ec.EllipticCurvePrivateKey) -> str:
    return base64.b64encode(hashlib.sha256(spki(k)).digest()).decode()


@dataclass(frozen=True)
class CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(DER)


@functools.cache
def ca(name: str = "Fake CT Test CA", seed: int = 1) -> CA:
    """A self-signed CA, the same object for the whole test session."""
    k = key(seed)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(k.public_key())
        .serial_number(seed)
        .not_valid_before(_NOW - dt.timedelta(days=365))
        .not_valid_after(_NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(k, hashes.SHA256())
    )
    return CA(k, cert)


@dataclass(frozen=True)
class Issuance:
    """One issuance: the precertificate (with the poison extension) and the final certificate
    (with an SCT list), sharing their TBS apart from those two extensions."""

    precert: x509.Certificate
    cert: x509.Certificate
    issuer: CA

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(DER)

    @property
    def precert_der(self) -> bytes:
        return self.precert.public_bytes(DER)


def issue(
    issuer: CA, subject_key: ec.EllipticCurvePrivateKey, names: list[str], cn: str | None = None
) -> Issuance:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0])]))
        .issuer_name(issuer.cert.subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW)
        .not_valid_after(_NOW + dt.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    )
    precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(
        issuer.key, hashes.SHA256()
    )
    # Not a real SCT list: its content does not matter to anyone who drops it.
    scts = x509.UnrecognizedExtension(SCT_LIST_OID, b"\x04\x06\x00\x04\x00\x02\xab\xcd")
    cert = builder.add_extension(scts, critical=False).sign(issuer.key, hashes.SHA256())
    return Issuance(precert, cert, issuer)


def dedupe_hash(issuance: Issuance) -> str:
    """What pinscan must compute for both entries: SHA-256 of the TBS without poison and SCTs."""
    return hashlib.sha256(issuance.cert.tbs_precertificate_bytes).hexdigest()


# --- log entries ----------------------------------------------------------------------------


def _u24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


@dataclass(frozen=True)
class Entry:
    """One log entry as both protocols encode it."""

    timestamped: bytes  # TimestampedEntry
    extra_data: bytes  # RFC 6962 get-entries extra_data
    tile_tail: bytes  # what follows the TimestampedEntry in a data tile
    issuer_der: bytes

    @property
    def leaf(self) -> bytes:
        return b"\x00\x00" + self.timestamped

    @property
    def tile_leaf(self) -> bytes:
        return self.timestamped + self.tile_tail


def x509_entry(
    issuance: Issuance, timestamp: int = 1_790_000_000_000, index: int | None = None
) -> Entry:
    ext = _extensions(index)
    ts = struct.pack(">QH", timestamp, 0) + _u24(issuance.cert_der) + ext
    chain = _u24(issuance.issuer.der)
    return Entry(ts, _u24(chain), _fingerprints(issuance), issuance.issuer.der)


def precert_entry(
    issuance: Issuance, timestamp: int = 1_790_000_000_000, index: int | None = None
) -> Entry:
    ext = _extensions(index)
    issuer_key_hash = hashlib.sha256(spki(issuance.issuer.key)).digest()
    tbs = issuance.cert.tbs_precertificate_bytes  # = the precert TBS without the poison
    ts = struct.pack(">QH", timestamp, 1) + issuer_key_hash + _u24(tbs) + ext
    extra = _u24(issuance.precert_der) + _u24(_u24(issuance.issuer.der))
    tail = _u24(issuance.precert_der) + _fingerprints(issuance)
    return Entry(ts, extra, tail, issuance.issuer.der)


def _extensions(index: int | None) -> bytes:
    if index is None:
        return b"\x00\x00"
    return struct.pack(">HBH", 8, 0, 5) + index.to_bytes(5, "big")


def _fingerprints(issuance: Issuance) -> bytes:
    fp = hashlib.sha256(issuance.issuer.der).digest()
    return struct.pack(">H", len(fp)) + fp


# --- signing --------------------------------------------------------------------------------


def sign_sth(k: ec.EllipticCurvePrivateKey, timestamp: int, size: int, root: bytes) -> bytes:
    """A TLS DigitallySigned(SHA-256, ECDSA) over the RFC 6962 TreeHeadSignature."""
    sig = k.sign(struct.pack(">BBQQ", 0, 1, timestamp, size) + root, ec.ECDSA(hashes.SHA256()))
    return struct.pack(">BBH", 4, 3, len(sig)) + sig


def checkpoint(k: ec.EllipticCurvePrivateKey, origin: str, size: int, root: bytes, ts: int) -> str:
    log_id = hashlib.sha256(spki(k)).digest()
    key_id = hashlib.sha256(origin.encode() + b"\n\x05" + log_id).digest()[:4]
    blob = key_id + struct.pack(">Q", ts) + sign_sth(k, ts, size, root)
    witness = base64.b64encode(b"\x01\x02\x03\x04" + b"w" * 64).decode()
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    return f"{body}\n\u2014 {origin} {base64.b64encode(blob).decode()}\n\u2014 witness {witness}\n"


def audit_path(hashes: list[bytes], index: int) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(index, hashes)."""
    if len(hashes) <= 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if index < k:
        return [*audit_path(hashes[:k], index), tree_root(hashes[k:])]
    return [*audit_path(hashes[k:], index - k), tree_root(hashes[:k])]


# --- servers --------------------------------------------------------------------------------

Route = Callable[[str, dict[str, list[str]]], tuple[int, dict[str, str], bytes]]


@contextmanager
def serve(route: Route) -> Iterator[str]:
    """Serves ``route(path, query) -> (status, headers, body)`` on 127.0.0.1; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, headers, body = route(parts.path, parse_qs(parts.query))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _json(value: object, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


@dataclass
class FakeRfc6962Log:
    """An RFC 6962 log. ``size`` is what get-sth publishes (None: every entry); ``cap`` the most
    entries one get-entries returns; ``fail`` how many requests still get a 503; ``fail_from``
    an index from which get-entries answers 503 for good (a log that dies mid catch-up);
    ``tampered`` entries are served in place of the signed ones; the ``bad_*`` and ``shrink_to``
    switches make it misbehave. ``starts`` records the start of every get-entries answered."""

    signing_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: key(101))
    entries: list[Entry] = field(default_factory=list)
    size: int | None = None
    cap: int = 7
    fail: int = 0
    bad_signature: bool = False
    bad_root: bool = False
    shrink_to: int | None = None
    fail_from: int | None = None
    tampered: dict[int, Entry] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def published(self) -> int:
        return len(self.entries) if self.size is None else self.size

    def sth(self) -> dict[str, object]:
        size = self.published if self.shrink_to is None else self.shrink_to
        hashes = [leaf_hash(e.leaf) for e in self.entries[:size]]
        root = tree_root(hashes)
        if self.bad_root:
            root = node_hash(root, root)
        ts = 1_790_000_000_000 + size
        sig = sign_sth(self.signing_key, ts, size, root)
        if self.bad_signature:
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        return {
            "tree_size": size,
            "timestamp": ts,
            "sha256_root_hash": base64.b64encode(root).decode(),
            "tree_head_signature": base64.b64encode(sig).decode(),
        }

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests.append(path)
            if self.fail > 0:
                self.fail -= 1
                return 503, {"Retry-After": "0"}, b"try later"
        b64 = base64.b64encode
        if path.endswith("/ct/v1/get-sth"):
            return _json(self.sth())
        if path.endswith("/ct/v1/get-entries"):
            start, end = int(query["start"][0]), int(query["end"][0])
            if start > end or end >= self.published:
                return _json({"error": "bad range"}, 400)
            stop = min(end + 1, start + self.cap)
            if self.fail_from is not None and stop > self.fail_from:
                return 503, {"Retry-After": "0"}, b"down"
            with self.lock:
                self.starts.append(start)
            chosen = [self.tampered.get(i, self.entries[i]) for i in range(start, stop)]
            return _json(
                {
                    "entries": [
                        {
                            "leaf_input": b64(e.leaf).decode(),
                            "extra_data": b64(e.extra_data).decode(),
                        }
                        for e in chosen
                    ]
                }
            )
        if path.endswith("/ct/v1/get-entry-and-proof"):
            index, size = int(query["leaf_index"][0]), int(query["tree_size"][0])
            hashes = [leaf_hash(e.leaf) for e in self.entries[:size]]
            entry = self.entries[index]
            return _json(
                {
                    "leaf_input": b64(entry.leaf).decode(),
                    "extra_data": b64(entry.extra_data).decode(),
                    "audit_path": [b64(h).decode() for h in audit_path(hashes, index)],
                }
            )
        return 404, {}, b"not found"

    @contextmanager
    def serving(self) -> Iterator[str]:
        with serve(self.route) as base:
            yield base + "log/"


@dataclass
class TileTree:
    """A static-ct-api log written into ``root``: checkpoint, hash and data tiles (partial ones
    for the checkpoint size) and issuers. :meth:`publish` rewrites it for the current entries."""

    root: Path
    origin: str = "ct.example.test/tiled2026"
    signing_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: key(202))
    entries: list[Entry] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def publish(self, size: int | None = None, *, drop_partials: bool = False) -> None:
        """Signs a checkpoint for the first ``size`` entries (all by default), writes every full
        tile of all entries, the partial tiles that checkpoint needs (unless ``drop_partials``:
        a log may drop them once the full tile exists) and the issuers."""
        size = len(self.entries) if size is None else size
        leaves = [leaf_hash(e.leaf) for e in self.entries]
        note = checkpoint(self.signing_key, self.origin, size, tree_root(leaves[:size]), size)
        self._write("checkpoint", note.encode())
        hashes, unit = leaves, 1
        for level in range(6):
            for n in range(len(hashes) // WIDTH):
                self._write(tile_path(level, n), b"".join(hashes[n * WIDTH : (n + 1) * WIDTH]))
            n, width = divmod(size // unit, WIDTH)
            if width and not drop_partials:
                self._write(
                    tile_path(level, n, width), b"".join(hashes[n * WIDTH : n * WIDTH + width])
                )
            hashes = [
                tree_root(hashes[i * WIDTH : (i + 1) * WIDTH]) for i in range(len(hashes) // WIDTH)
            ]
            unit *= WIDTH
        for n in range(len(self.entries) // WIDTH):
            self._write(tile_path("data", n), self._data(n * WIDTH, (n + 1) * WIDTH))
        n, width = divmod(size, WIDTH)
        if width and not drop_partials:
            self._write(tile_path("data", n, width), self._data(n * WIDTH, size))
        for e in self.entries:
            self._write(f"issuer/{hashlib.sha256(e.issuer_der).hexdigest()}", e.issuer_der)

    def _data(self, start: int, end: int) -> bytes:
        return b"".join(e.tile_leaf for e in self.entries[start:end])

    def _write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(path)
        relative = path.removeprefix("/tiled/")
        file = self.root / relative
        if ".." in relative or not file.is_file():
            return 404, {}, b"not found"
        body = file.read_bytes()
        if relative.startswith("tile/data/"):
            return 200, {"Content-Encoding": "gzip"}, gzip.compress(body)
        return 200, {}, body

    @contextmanager
    def serving(self) -> Iterator[str]:
        with serve(self.route) as base:
            yield base + "tiled/"


@dataclass
class FakeCrtSh:
    """crt.sh's JSON search and ``?d=<id>`` download, with ``fail`` 503s first."""

    issuances: dict[int, Issuance] = field(default_factory=dict)
    fail: int = 0

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if self.fail > 0:
            self.fail -= 1
            return 503, {"Retry-After": "0"}, b"db timeout"
        if "d" in query:
            cert = self.issuances[int(query["d"][0])].cert
            return 200, {}, cert.public_bytes(serialization.Encoding.PEM)
        q = query["q"][0].lower()
        rows = []
        for crtsh_id, issuance in self.issuances.items():
            names = issuance.precert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns = names.value.get_values_for_type(x509.DNSName)
            if any(n == q or (q.startswith("%.") and n.endswith(q[1:])) for n in dns):
                rows.append({"id": crtsh_id, "name_value": "\n".join(dns)})
        return _json(rows)


def log_list(
    rfc6962: tuple[str, ec.EllipticCurvePrivateKey],
    tiled: tuple[str, str, ec.EllipticCurvePrivateKey],
) -> dict:
    """A Chrome v3 log list with one RFC 6962 log, one tiled log and a retired log to skip."""

    def entry(k: ec.EllipticCurvePrivateKey, state: str) -> dict:
        return {
            "key": base64.b64encode(spki(k)).decode(),
            "log_id": base64.b64encode(hashlib.sha256(spki(k)).digest()).decode(),
            "mmd": 86400,
            "state": {state: {"timestamp": "2026-01-01T00:00:00Z"}},
        }

    url, rfc_key = rfc6962
    monitoring, submission, tiled_key = tiled
    return {
        "version": "1.0",
        "log_list_timestamp": "2026-11-01T00:00:00Z",
        "operators": [
            {
                "name": "Fake Operator",
                "email": ["ct@example.test"],
                "logs": [
                    {**entry(rfc_key, "usable"), "description": "Fake RFC 6962 log", "url": url},
                    {**entry(key(999), "retired"), "description": "Retired", "url": url + "old/"},
                ],
                "tiled_logs": [
                    {
                        **entry(tiled_key, "qualified"),
                        "description": "Fake tiled log",
                        "submission_url": submission,
                        "monitoring_url": monitoring,
                    }
                ],
            }
        ],
    }
