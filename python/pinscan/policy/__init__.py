# SPDX-License-Identifier: Apache-2.0
"""Pin policies: every client's format read into one rule model, judged against a scan.

>>> policy = pinscan.load_policy("res/xml/network_security_config.xml")  # doctest: +SKIP
>>> verdicts = pinscan.evaluate(pinscan.open("out"), policy)  # doctest: +SKIP
>>> verdicts.filter(pl.col("verdict") == "fail")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from pinscan.dataset import ScanDataset
from pinscan.dataset import open as open_dataset
from pinscan.errors import InputError, PolicyError
from pinscan.policy import evaluate as _evaluate
from pinscan.policy import findings as _findings
from pinscan.policy.artifacts import Artifact, read_artifact, sniff
from pinscan.policy.formats import MODULES, WRITABLE, detect, read
from pinscan.policy.model import Policy

FORMATS = tuple(MODULES)
SUGGEST_FORMATS = WRITABLE

PolicySource = str | os.PathLike[str] | bytes


def load_policies(
    source: PolicySource,
    format: str | None = None,
    *,
    android_debug: bool = False,
    hosts: Iterable[str] = (),
) -> list[Policy]:
    """Every policy in a file (or in text/bytes): an Android file with ``<trustkit-config>``
    gives the Android and the TrustKit-Android view, an Info.plist may hold ATS pins and a
    TrustKit dictionary. ``format`` forces one reader (see :data:`FORMATS`);
    ``android_debug`` applies Android's ``<debug-overrides>``, as a debuggable build does (a
    release build, the default, ignores them); ``hosts`` names the hosts a PEM bundle of CA
    certificates (Node.js ``ca``, format ``ca-bundle``) covers. An app artifact (APK, AAB, split
    APKs, IPA, an ``.app`` directory) gives every policy in it, each named after its place
    (``app.apk!res/xml/nsc.xml``)."""
    if _is_bundle(source):
        return read_artifact(source).policies  # type: ignore[arg-type]
    data, name = _data_of(source)
    return read(data, name, format, android_debug=android_debug, hosts=tuple(hosts))


def load_policy(
    source: PolicySource,
    format: str | None = None,
    *,
    android_debug: bool = False,
    hosts: Iterable[str] = (),
) -> Policy | list[Policy]:
    """The policy in a file, or in text or bytes, by content unless ``format`` says which; for
    an app artifact (APK, AAB, split APKs, IPA, ``.app`` directory), the list of every policy
    in it, each named after its place (``app.apk!res/xml/nsc.xml``): :func:`evaluate` and
    :func:`findings` take either.

    A file the client would reject still loads: its ``error`` says why, and :func:`evaluate`
    gives every host it covers the verdict ``error``. Raises :class:`PolicyError` only for a file
    that cannot be read as any policy, or that holds two (pass ``format``), and
    :class:`ArtifactError` for an artifact that cannot be read.
    """
    if _is_bundle(source):
        return read_artifact(source).policies  # type: ignore[arg-type]
    data, name = _data_of(source)
    if (format or detect(data, name)[0]) == "artifact":
        return read(data, name, "artifact")
    policies = read(data, name, format, android_debug=android_debug, hosts=tuple(hosts))
    if len(policies) > 1:
        found = ", ".join(p.format for p in policies)
        raise PolicyError(name, f"holds several policies ({found}): pass format= to pick one")
    return policies[0]


def evaluate(
    dataset: ScanDataset | str | os.PathLike[str],
    policy: Policy | Iterable[Policy] | PolicySource,
    as_of: dt.datetime | dt.date | None = None,
    *,
    stores: str | Mapping[str, str] | None = None,
    okhttp_jvm: bool = False,
    anchor_store: str | None = None,
) -> pl.DataFrame:
    """One row per (endpoint, policy) with the verdict a client of that policy reaches, on the
    path its platform's trust store builds (``store`` says which); see
    :func:`pinscan.policy.evaluate.evaluate` for the columns. ``stores`` judges every format by
    one store (``"java"``), or some formats by others (``{"okhttp": "java"}``);
    ``okhttp_jvm`` judges OkHttp on Java's store, as OkHttp off Android builds its path.
    ``anchor_store`` (``system`` or ``user``) says where the scan's ``--ca-bundle`` roots sit on
    an Android device (default: what the scan recorded, else ``system``)."""
    return _evaluate.evaluate(
        _dataset(dataset),
        _policies(policy),
        as_of,
        stores=stores,
        okhttp_jvm=okhttp_jvm,
        anchor_store=anchor_store,
    )


def findings(
    dataset: ScanDataset | str | os.PathLike[str],
    policy: Policy | Iterable[Policy] | PolicySource,
    as_of: dt.datetime | dt.date | None = None,
    *,
    days: int = 30,
    stores: str | Mapping[str, str] | None = None,
    okhttp_jvm: bool = False,
) -> pl.DataFrame:
    """Fleet-wide findings about the policies (no backup pin, stale pins, rotation risk, expiry,
    client compatibility, a platform store the scan lacks; for an app artifact, what in it
    could not be read); see :mod:`pinscan.policy.findings`. ``stores`` and ``okhttp_jvm`` as
    for :func:`evaluate`."""
    artifact = _artifact(policy)
    return _findings.findings(
        _dataset(dataset), artifact.policies if artifact else _policies(policy), as_of,
        days=days, stores=stores, okhttp_jvm=okhttp_jvm, artifacts=[artifact] if artifact else (),
    )  # fmt: skip


def _dataset(dataset: ScanDataset | str | os.PathLike[str]) -> ScanDataset:
    return dataset if isinstance(dataset, ScanDataset) else open_dataset(dataset)


def _policies(policy: Policy | Iterable[Policy] | PolicySource) -> list[Policy]:
    if isinstance(policy, Policy):
        return [policy]
    if isinstance(policy, str | bytes | os.PathLike):
        return load_policies(policy)
    return list(policy)


def _artifact(policy: Policy | Iterable[Policy] | PolicySource) -> Artifact | None:
    """The app artifact ``policy`` names or holds, read; None when it is no artifact."""
    # A str holding a policy's text is no path: only one that could name a file is tried.
    path_like = isinstance(policy, os.PathLike) or (
        isinstance(policy, str) and "\n" not in policy and "\0" not in policy
    )
    if not (isinstance(policy, bytes) or path_like):
        return None
    found = sniff(policy)  # type: ignore[arg-type]
    return read_artifact(policy) if found else None


def _is_bundle(source: PolicySource) -> bool:
    """An ``.app`` directory: a policy source read where it is, not as a file's bytes."""
    return (
        not isinstance(source, bytes)
        and (isinstance(source, os.PathLike) or "\n" not in source)
        and os.path.isdir(source)
    )


def _data_of(source: PolicySource) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "<bytes>"
    # A str is a path unless it cannot be one: several lines, or words that name no file.
    if isinstance(source, str) and (
        "\n" in source or (len(source.split()) > 1 and not Path(source).exists())
    ):
        return source.encode(), "<text>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise InputError(str(path), exc.strerror or str(exc)) from None


__all__ = [
    "FORMATS",
    "SUGGEST_FORMATS",
    "Policy",
    "evaluate",
    "findings",
    "load_policies",
    "load_policy",
]
