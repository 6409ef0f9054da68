# SPDX-License-Identifier: Apache-2.0
"""The committed lock (requirements.lock.txt, `make lock`) against pyproject.toml's ranges: every
requirement pinned to a version its range allows, every pin with hashes, and `make` reinstalling
from it when it changes. A range changed without `make lock` fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from terminal import ROOT

LOCK = ROOT / "requirements.lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, list[tuple[Version, Marker | None, int]]]:
    """Each package of the lock: its pins (one per marker), with the number of hashes."""
    pins: dict[str, list[tuple[Version, Marker | None, int]]] = {}
    name = None
    for line in LOCK.read_text().splitlines():
        if match := _PIN.match(line):
            name = canonicalize_name(match[1])
            marker = Marker(match[3]) if match[3] else None
            pins.setdefault(name, []).append((Version(match[2]), marker, 0))
        elif name and line.strip().startswith("--hash=sha256:"):
            version, marker, hashes = pins[name][-1]
            pins[name][-1] = (version, marker, hashes + 1)
    return pins


def requirements() -> list[Requirement]:
    script = ROOT / "scripts" / "requirements.py"
    listed = subprocess.run([sys.executable, script], capture_output=True, text=True, check=True)
    return [Requirement(line) for line in listed.stdout.splitlines()]


def test_every_requirement_is_pinned_within_its_range() -> None:
    pins = locked()
    checked = []
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in the lock: run `make lock`"
        for version, _, _ in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"the lock has {name}=={version}, outside {requirement}: run `make lock`"
            )
        checked.append(name)
    assert {"maturin", "pip", "cryptography", "polars", "rich", "pytest"} <= set(checked)


def test_every_pin_has_hashes_and_applies_somewhere() -> None:
    pins = locked()
    assert len(pins) > 40
    for name, entries in pins.items():
        for version, _, hashes in entries:
            assert hashes >= 1, f"{name}=={version} has no hash: pip --require-hashes refuses it"
    # Exactly one pin of each package applies to this interpreter, as pip needs.
    for name, entries in pins.items():
        here = [v for v, marker, _ in entries if marker is None or marker.evaluate()]
        assert len(here) <= 1, f"{name}: several pins apply here: {here}"


def test_make_reinstalls_when_the_lock_changes() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # -n: print only; -W: as if the lock had just changed.
    dry = subprocess.run(
        [make, "-n", "-W", "requirements.lock.txt", ".venv/.deps-installed"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "--require-hashes -r requirements.lock.txt" in dry.stdout
