# SPDX-License-Identifier: Apache-2.0
"""Pins and policies read straight out of app artifacts: APK, AAB, split APKs (``.apks``,
``.xapk``), IPA and ``.app`` directories.

:func:`read_artifact` opens the archive safely (:mod:`.archive`), tells its kind from its
content, never from its name, and hands it to the platform's reader, which fills the
:class:`~.model.Artifact`:

- ``android.read_android(archive, artifact, *, code)``: ``apk``, ``aab`` and ``apks``;
- ``ios.read_ios(archive, artifact, *, code)``: ``ipa`` and ``app``.

A reader appends what it finds to ``artifact.policies`` and ``artifact.pins``, and one line per
member it cannot read to ``artifact.errors`` (then goes on); ``code=False`` skips the search
of code (dex, native libraries, executables) for pin strings. :class:`ArtifactError` is for an
artifact that cannot be read at all.
"""

from __future__ import annotations

import os
import re

from pinscan.errors import ArtifactError
from pinscan.policy.artifacts.archive import (
    DEFAULT_LIMITS,
    Archive,
    DirectoryArchive,
    Limits,
    open_archive,
)
from pinscan.policy.artifacts.model import ARTIFACT_KINDS, PIN_KINDS, Artifact, FoundPin
from pinscan.policy.formats import ZIP_MAGIC

_IPA_PLIST = re.compile(r"Payload/[^/]+\.app/Info\.plist")


def kind_of(archive: Archive) -> str | None:
    """The kind of artifact ``archive`` holds, by its members; ``None`` when none."""
    names = archive.names()
    if "AndroidManifest.xml" in archive:
        return "apk"
    if "base/manifest/AndroidManifest.xml" in archive:
        return "aab"
    if "Info.plist" in archive and isinstance(archive, DirectoryArchive):
        return "app"
    if any(_IPA_PLIST.fullmatch(name) for name in names):
        return "ipa"
    if any(name.endswith(".apk") for name in names):
        return "apks"
    return None


def sniff(source: str | os.PathLike[str] | bytes) -> str | None:
    """The kind of artifact at ``source`` (a path, or a zip's bytes), by content: one of
    :data:`ARTIFACT_KINDS`, ``None`` when it is none. Never raises."""
    if not isinstance(source, bytes) and not os.path.isdir(source):
        try:
            with open(source, "rb") as file:
                if file.read(4) not in ZIP_MAGIC:
                    return None
        except OSError:
            return None
    elif isinstance(source, bytes) and source[:4] not in ZIP_MAGIC:
        return None
    try:
        with open_archive(source) as archive:
            return kind_of(archive)
    except ArtifactError:
        return None


def read_artifact(
    source: str | os.PathLike[str] | bytes,
    name: str | None = None,
    *,
    code: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> Artifact:
    """Every policy and pin in the artifact at ``source`` (a path, or a zip's bytes named
    ``name``). ``code=False`` reads configurations, manifests and bundled certificates only.

    Raises :class:`ArtifactError` for an artifact that cannot be read at all (not a zip,
    truncated, over a limit, no app inside); what cannot be read of a readable artifact is in
    its ``errors``."""
    with open_archive(source, name, limits) as archive:
        kind = kind_of(archive)
        if kind is None:
            raise ArtifactError(
                archive.name,
                "not an app artifact: no AndroidManifest.xml, base/manifest/AndroidManifest.xml, "
                "Payload/*.app/Info.plist or split APKs in it",
            )
        artifact = Artifact(archive.name, kind)
        artifact.errors.extend(archive.problems)
        if kind in ("apk", "aab", "apks"):
            from pinscan.policy.artifacts import android

            android.read_android(archive, artifact, code=code)
        else:
            from pinscan.policy.artifacts import ios

            ios.read_ios(archive, artifact, code=code)
        return artifact


__all__ = [
    "ARTIFACT_KINDS",
    "PIN_KINDS",
    "ZIP_MAGIC",
    "Artifact",
    "ArtifactError",
    "FoundPin",
    "kind_of",
    "read_artifact",
    "sniff",
]
