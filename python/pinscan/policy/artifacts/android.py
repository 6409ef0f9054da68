# SPDX-License-Identifier: Apache-2.0
"""Pins out of an Android app as it ships: an ``.apk``, split APKs (``.apks``, ``.xapk``) or an
``.aab``.

The Network Security Config is found the way Android finds it: the manifest's
``application@android:networkSecurityConfig`` is a resource id, the resource table
(``resources.arsc``; ``resources.pb`` in an ``.aab``) says which file holds it, whatever its
name (obfuscated names and shortened paths resolve). The compiled XML is decoded by the Rust
core (``_core.android_xml``) into the tree the source readers walk (:mod:`..android`,
:mod:`..trustkit_android`), with every attribute typed as aapt compiled it, so a config means
the same compiled as in source. ``<certificates src="@raw/ca">`` is resolved to the bundled file,
whose keys become the rule's trust anchors.

Pins in code: ``sha256/``/``sha1/`` strings in every ``classes*.dex`` (tied to their hosts at
``CertificatePinner.Builder.add`` call sites the bytecode spells out), in ``assets/`` (React
Native bundles) and in native libraries (Flutter's ``libapp.so``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable

from pinscan import _core
from pinscan.certs.keys import read_certificates, spki_pin
from pinscan.errors import ArtifactError, InputError
from pinscan.policy import android, okhttp, trustkit_android
from pinscan.policy._network_security_config import ROOT
from pinscan.policy._xml import CompiledValue, Node, descendants
from pinscan.policy.artifacts.archive import Archive
from pinscan.policy.artifacts.model import Artifact, FoundPin
from pinscan.policy.model import Pin, Policy, TrustAnchor

#: ``android:networkSecurityConfig`` in the framework's attribute table (API 24). Android looks
#: the attribute up by this id, so a manifest whose attribute names are stripped still counts.
NSC_ATTRIBUTE = 0x01010527
#: ``android:debuggable``: a debuggable build also reads ``<debug-overrides>``.
DEBUGGABLE_ATTRIBUTE = 0x0101000F
_ANDROID_NS = "http://schemas.android.com/apk/res/android"

#: Aliases followed before giving up (a loop of them resolves nothing).
_MAX_ALIASES = 8

_DEX = re.compile(r"classes\d*\.dex")
_NATIVE = re.compile(r"lib/[^/]+/[^/]+\.so")


@dataclasses.dataclass
class _Module:
    """One APK, or one module of an ``.aab`` (``base/``), and how its files are stored."""

    archive: Archive
    prefix: str
    proto: bool

    @property
    def table(self) -> str:
        return self.prefix + ("resources.pb" if self.proto else "resources.arsc")

    @property
    def manifest(self) -> str:
        return self.prefix + (
            "manifest/AndroidManifest.xml" if self.proto else "AndroidManifest.xml"
        )

    @functools.cached_property
    def table_bytes(self) -> bytes:
        """The resource table, read once (several lookups per app; megabytes in a large one)."""
        return self.archive.read(self.table)

    def resource(self, resource_id: int) -> tuple[str, str, list[tuple[str, str, object]]] | None:
        """What the table says ``resource_id`` is; None when it has no such resource."""
        return _core.android_resource(self.table_bytes, resource_id, proto=self.proto)

    def file(self, resource_id: int) -> str | None:
        """The member holding file resource ``resource_id``: the default configuration's, or
        the first one's when there is no default. An alias (``<item type="xml">@xml/x</item>``)
        is followed, as the resource manager follows it, a few levels deep."""
        for _ in range(_MAX_ALIASES):
            found = self.resource(resource_id)
            if found is None:
                return None
            values = sorted(found[2], key=lambda item: item[0] != "")
            if not values or values[0][1] not in ("string", "reference"):
                return None
            _config, kind, value = values[0]
            if kind == "string":
                return self.prefix + str(value)
            resource_id = int(value)  # type: ignore[call-overload]
        return None

    def name(self, resource_id: int) -> str:
        """``@type/name`` as the table names the resource, ``@0x7f...`` when it cannot."""
        try:
            found = self.resource(resource_id)
        except (ArtifactError, ValueError):
            found = None
        return f"@{found[0]}/{found[1]}" if found else f"@0x{resource_id:08x}"


def read_android(archive: Archive, artifact: Artifact, *, code: bool = True) -> None:
    """Fill ``artifact`` with the app's policies and pins; what cannot be read goes to
    ``artifact.errors`` one line each, and the rest is still read."""
    if artifact.kind == "aab":
        # base/ and every feature module beside it (each has its own manifest and dex/).
        suffix = "/manifest/AndroidManifest.xml"
        modules = [
            _Module(archive, name[: -len(suffix)] + "/", proto=True)
            for name in archive.names()
            if name.endswith(suffix) and name.count("/") == 2
        ]
    elif artifact.kind == "apk":
        modules = [_Module(archive, "", proto=False)]
    else:
        modules = []
        for name in archive.names():
            if not name.endswith(".apk"):
                continue
            try:
                modules.append(_Module(archive.open_nested(name), "", proto=False))
            except ArtifactError as exc:
                artifact.errors.append(str(exc))
    for module in modules:
        _attempt(artifact, lambda module=module: _read_config(module, artifact))
        if code:
            _read_code(module, artifact)


def _attempt(artifact: Artifact, step: Callable[[], None]) -> None:
    """Runs one step of the reading; an unreadable member or resource becomes an error line."""
    try:
        step()
    except InputError as exc:
        artifact.errors.append(str(exc))


def _decode(module: _Module, member: str) -> tuple:
    try:
        return _core.android_xml(module.archive.read(member), proto=module.proto)
    except ValueError as exc:
        raise ArtifactError(
            module.archive.source(member), f"not readable compiled XML: {exc}"
        ) from None


def _read_config(module: _Module, artifact: Artifact) -> None:
    if module.manifest not in module.archive:
        return  # a split APK's manifest is a base's business; an .apks without one is fine
    manifest = _decode(module, module.manifest)
    config_id, debuggable = None, False
    for child in manifest[5]:
        if isinstance(child, tuple) and child[1] == "application":
            for namespace, name, resource_id, _raw, kind, value in child[4]:
                if _is(resource_id, namespace, name, NSC_ATTRIBUTE, "networkSecurityConfig"):
                    config_id = value if kind == "reference" else None
                elif _is(resource_id, namespace, name, DEBUGGABLE_ATTRIBUTE, "debuggable"):
                    debuggable = kind in ("boolean", "int_dec", "int_hex") and bool(value)
    if config_id is None:
        return
    try:
        member = module.file(config_id)
    except ValueError as exc:
        raise ArtifactError(module.archive.source(module.table), f"not readable: {exc}") from None
    if member is None:
        artifact.errors.append(
            f"{module.archive.source(module.manifest)}: networkSecurityConfig names resource "
            f"0x{config_id:08x}, which {module.table} does not hold (Android refuses to start)"
        )
        return
    source = module.archive.source(member)
    references: dict[str, int] = {}
    root = _node(_decode(module, member), module, references)
    if root.name != ROOT:
        artifact.errors.append(f"{source}: not a <{ROOT}> document (root element <{root.name}>)")
        return
    policies = [android.parse_tree(root, source, debug=debuggable)]
    if next(descendants(root, {"trustkit-config"}), None) is not None:
        policies.append(trustkit_android.parse_tree(root, source))
    anchors = _Anchors(module, references, artifact)
    for policy in policies:
        policy = anchors.resolve(policy)
        artifact.policies.append(policy)
        if policy.format == "android":
            _config_pins(policy, artifact)
            artifact.pins.extend(anchors.found(policy))


def _is(resource_id: int, namespace: str, name: str, wanted: int, wanted_name: str) -> bool:
    """Whether a manifest attribute is the framework attribute ``wanted``: by id, as Android
    matches it, or by name when the compiler left no id."""
    if resource_id:
        return resource_id == wanted
    return namespace == _ANDROID_NS and name == wanted_name


def _text(kind: str, value: object, raw: str | None, module: _Module) -> str:
    """The text ``getAttributeValue`` gives for a compiled value."""
    if kind == "string":
        return str(value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "int_hex":
        return f"0x{value:x}"
    if kind == "color":
        return f"#{value:08x}"
    if kind == "reference" and isinstance(value, int):
        return module.name(value)
    if kind == "attribute":
        return f"?0x{value:08x}"
    return raw if raw is not None else str(value)


def _node(element: tuple, module: _Module, references: dict[str, int]) -> Node:
    """The decoded element as the source readers' tree; references recorded by their text."""
    _namespace, name, line, end_line, attributes, content = element
    attrs: dict[str, str] = {}
    for namespace, key, _id, raw, kind, value in attributes:
        if namespace:  # as in source: the readers look at un-namespaced attributes only
            continue
        text = _text(kind, value, raw, module)
        if kind == "reference":
            references[text] = value
        attrs[key] = CompiledValue(text, kind, value)
    node = Node(name, attrs, line, end_line=end_line)
    for item in content:
        node.content.append(item if isinstance(item, str) else _node(item, module, references))
    return node


def _config_pins(policy: Policy, artifact: Artifact) -> None:
    hosts: dict[tuple[str, str], list[str]] = {}
    for rule in policy.rules:
        for pin in rule.pins:
            hosts.setdefault((pin.algorithm, pin.digest), []).append(rule.host)
    for (algorithm, digest), names in hosts.items():
        artifact.pins.append(
            FoundPin(digest, algorithm, tuple(dict.fromkeys(names)), policy.name, "config")
        )


class _Anchors:
    """``@raw`` trust anchors resolved to their bundled files and the keys in them."""

    def __init__(self, module: _Module, references: dict[str, int], artifact: Artifact) -> None:
        self.module = module
        self.references = references
        self.artifact = artifact
        self.cache: dict[str, TrustAnchor] = {}

    def anchor(self, source: str) -> TrustAnchor:
        if source in self.cache:
            return self.cache[source]
        anchor = TrustAnchor(source)
        resource_id = self.references.get(source)
        if resource_id is not None:
            try:
                anchor = self._load(source, resource_id)
            except InputError as exc:
                self.artifact.errors.append(str(exc))
            except ValueError as exc:
                self.artifact.errors.append(
                    f"{self.module.archive.source(self.module.table)}: {exc}"
                )
        self.cache[source] = anchor
        return anchor

    def _load(self, source: str, resource_id: int) -> TrustAnchor:
        member = self.module.file(resource_id)
        if member is None:
            raise ArtifactError(
                self.module.archive.source(self.module.table),
                f"trust anchor {source} (0x{resource_id:08x}) is not in the table",
            )
        where = self.module.archive.source(member)
        pins = []
        # As Android's ResourceCertificateSource: every certificate in the file, PEM or DER.
        try:
            certificates = read_certificates(self.module.archive.read(member))
        except InputError as exc:
            raise ArtifactError(where, f"trust anchor {source}: {exc.message}") from None
        for der in certificates:
            try:
                digest = spki_pin(der)
            except InputError as exc:
                self.artifact.errors.append(f"{where}: trust anchor {source}: {exc.message}")
                continue
            pins.append(Pin("sha256", digest, f"sha256/{digest}"))
        return TrustAnchor(source, tuple(pins), where)

    def resolve(self, policy: Policy) -> Policy:
        rules = tuple(
            dataclasses.replace(rule, anchors=tuple(self.anchor(a.source) for a in rule.anchors))
            if any(a.source.startswith("@") for a in rule.anchors)
            else rule
            for rule in policy.rules
        )
        return dataclasses.replace(policy, rules=rules)

    def found(self, policy: Policy) -> list[FoundPin]:
        hosts: dict[tuple[str, str], list[str]] = {}
        for rule in policy.rules:
            for anchor in rule.anchors:
                for pin in anchor.pins:
                    hosts.setdefault((pin.digest, anchor.file or ""), []).append(rule.host)
        return [
            FoundPin(
                digest,
                "sha256",
                tuple(dict.fromkeys(names)),
                where,
                "bundled_certificate",
                'trust anchor of these hosts (<certificates src="@raw/...">): their chains '
                "must end at this key",
            )
            for (digest, where), names in hosts.items()
        ]


def _read_code(module: _Module, artifact: Artifact) -> None:
    archive = module.archive
    for name in archive.names():
        inner = name[len(module.prefix) :] if name.startswith(module.prefix) else None
        if inner is None:
            continue
        if module.proto and inner.startswith("dex/"):
            inner = inner[len("dex/") :]
        if _DEX.fullmatch(inner):
            _attempt(artifact, lambda name=name: _dex_pins(archive, name, artifact))
        elif inner.startswith("assets/") or _NATIVE.fullmatch(inner):
            _attempt(artifact, lambda name=name: _string_pins(archive, name, artifact))


def _dex_pins(archive: Archive, name: str, artifact: Artifact) -> None:
    source = archive.source(name)
    data = archive.read(name)
    try:
        calls, strings, untied = _core.dex_pins(data)
    except ValueError as exc:
        artifact.errors.append(f"{source}: not readable DEX ({exc}); searched as bytes")
        _found_strings(data, source, artifact, "in a DEX that does not decode", set())
        return
    if calls:
        artifact.policies.append(_okhttp_policy(calls, source, untied))
    # One found pin per digest, with every host its call sites tie it to.
    tied: dict[tuple[str, str], list[str]] = {}
    for host, labels in calls:
        for key in _canonical(labels):
            tied.setdefault(key, []).append(host)
    for (algorithm, digest), hosts in tied.items():
        artifact.pins.append(
            FoundPin(
                digest,
                algorithm,
                tuple(dict.fromkeys(hosts)),
                source,
                "code",
                "CertificatePinner.Builder.add(host, pins) call site",
            )
        )
    for algorithm, digest in dict.fromkeys(_canonical(strings)):
        if (algorithm, digest) not in tied:
            artifact.pins.append(
                FoundPin(
                    digest,
                    algorithm,
                    (),
                    source,
                    "code",
                    "a pin string the bytecode does not tie to a host: map it with --overlay",
                )
            )


def _canonical(labels: list[str]) -> list[tuple[str, str]]:
    """``(algorithm, canonical base64)`` of each string that is a well-formed pin; a malformed
    one is left to the OkHttp policy, which says that ``add()`` throws on it."""
    return [
        (algorithm, digest)
        for label in labels
        for _offset, algorithm, digest, _prefixed in _core.pin_strings(label.encode())
    ]


def _kotlin_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '\\"$':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _okhttp_policy(calls: list[tuple[str, list[str]]], source: str, untied: int) -> Policy:
    """The pinner the DEX builds, read as OkHttp reads it (:mod:`..okhttp`): the call sites are
    spelled as one ``CertificatePinner.Builder()`` chain, line N holding the N-th call site, so
    that a pattern or pin ``add()`` throws on is the policy error it is in source."""
    adds = [
        ".add(" + ", ".join(_kotlin_string(text) for text in (host, *pins)) + ")"
        for host, pins in calls
    ]
    text = "val pinner = CertificatePinner.Builder()" + "\n".join(adds) + ".build()\n"
    policy = okhttp.parse(text.encode(), source)
    note = (
        "read from the DEX's CertificatePinner.Builder.add call sites whose host and pins the "
        "bytecode spells out; line N is the N-th such call site in code order"
    )
    notes = (*policy.notes, note)
    if untied:
        notes += (
            f"{untied} more add() call site(s) whose host or pins the bytecode does not spell "
            "out (computed, or across a branch): left out, their pins are listed without hosts",
        )
    return dataclasses.replace(policy, notes=notes)


#: Bytes each chunk of a streamed member keeps from the one before, so that a pin string across
#: the boundary is found (``sha256/`` and 44 digits, in UTF-16 at most 102 bytes).
_OVERLAP = 128


def _string_pins(archive: Archive, name: str, artifact: Artifact) -> None:
    """Streams the member: a 100 MB native library is never held whole."""
    seen: set[tuple[str, str]] = set()
    carry = b""
    for chunk in archive.chunks(name):
        data = carry + chunk
        _found_strings(
            data, archive.source(name), artifact, "a pin string in a bundle or native library", seen
        )
        carry = data[-_OVERLAP:]


def _found_strings(
    data: bytes, source: str, artifact: Artifact, note: str, seen: set[tuple[str, str]]
) -> None:
    for _offset, algorithm, digest, _prefixed in _core.pin_strings(data):
        if (algorithm, digest) in seen:
            continue
        seen.add((algorithm, digest))
        artifact.pins.append(
            FoundPin(digest, algorithm, (), source, "code", f"{note}; hosts unknown")
        )


__all__ = ["NSC_ATTRIBUTE", "read_android"]
