# SPDX-License-Identifier: Apache-2.0
"""pinscan: which keys your hosts really serve, and whether pinned clients keep working.

The names below are imported on first use (PEP 562): ``import pinscan`` costs little, so the CLI
starts fast and a verification child (:mod:`pinscan.scanner.verify_pool`) loads no polars or
pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinscan import audit
    from pinscan._core import __version__
    from pinscan.catalog.graph import Catalog, ca_catalog
    from pinscan.catalog.stores import trust_stores
    from pinscan.certs.keys import read_certificates, spki_der, spki_pin
    from pinscan.certs.table import COLUMNS, certificates
    from pinscan.dataset import ScanDataset, open
    from pinscan.diffing import diff
    from pinscan.diffing import summary as diff_summary
    from pinscan.errors import (
        ArtifactError,
        ConfigError,
        DatasetError,
        InputError,
        InventoryError,
        PinscanError,
        PolicyError,
    )
    from pinscan.inventory import read_inventory
    from pinscan.policy import evaluate, findings, load_policies, load_policy
    from pinscan.policy.artifacts import read_artifact
    from pinscan.policy.artifacts.bulk import extract_pins
    from pinscan.report import Summary, summarize
    from pinscan.scanner.router import Written, scan, scan_async, scan_to

#: Public name -> (module, attribute in it; None for the module itself).
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "ArtifactError": ("pinscan.errors", "ArtifactError"),
    "COLUMNS": ("pinscan.certs.table", "COLUMNS"),
    "Catalog": ("pinscan.catalog.graph", "Catalog"),
    "ConfigError": ("pinscan.errors", "ConfigError"),
    "DatasetError": ("pinscan.errors", "DatasetError"),
    "InputError": ("pinscan.errors", "InputError"),
    "InventoryError": ("pinscan.errors", "InventoryError"),
    "PinscanError": ("pinscan.errors", "PinscanError"),
    "PolicyError": ("pinscan.errors", "PolicyError"),
    "ScanDataset": ("pinscan.dataset", "ScanDataset"),
    "Summary": ("pinscan.report", "Summary"),
    "__version__": ("pinscan._core", "__version__"),
    "audit": ("pinscan.audit", None),
    "ca_catalog": ("pinscan.catalog.graph", "ca_catalog"),
    "certificates": ("pinscan.certs.table", "certificates"),
    "diff": ("pinscan.diffing", "diff"),
    "diff_summary": ("pinscan.diffing", "summary"),
    "evaluate": ("pinscan.policy", "evaluate"),
    "extract_pins": ("pinscan.policy.artifacts.bulk", "extract_pins"),
    "findings": ("pinscan.policy", "findings"),
    "load_policies": ("pinscan.policy", "load_policies"),
    "load_policy": ("pinscan.policy", "load_policy"),
    "lockout": ("pinscan.rotation", "lockout"),
    "open": ("pinscan.dataset", "open"),
    "read_artifact": ("pinscan.policy.artifacts", "read_artifact"),
    "read_certificates": ("pinscan.certs.keys", "read_certificates"),
    "read_inventory": ("pinscan.inventory", "read_inventory"),
    "scan": ("pinscan.scanner.router", "scan"),
    "scan_async": ("pinscan.scanner.router", "scan_async"),
    "scan_to": ("pinscan.scanner.router", "scan_to"),
    "Written": ("pinscan.scanner.router", "Written"),
    "spki_der": ("pinscan.certs.keys", "spki_der"),
    "spki_pin": ("pinscan.certs.keys", "spki_pin"),
    "summarize": ("pinscan.report", "summarize"),
    "trust_stores": ("pinscan.catalog.stores", "trust_stores"),
}

__all__ = [
    "COLUMNS",
    "ArtifactError",
    "Catalog",
    "ConfigError",
    "DatasetError",
    "InputError",
    "InventoryError",
    "PinscanError",
    "PolicyError",
    "ScanDataset",
    "Summary",
    "Written",
    "__version__",
    "audit",
    "ca_catalog",
    "certificates",
    "diff",
    "diff_summary",
    "evaluate",
    "extract_pins",
    "findings",
    "load_policies",
    "load_policy",
    "lockout",
    "open",
    "read_artifact",
    "read_certificates",
    "read_inventory",
    "scan",
    "scan_async",
    "scan_to",
    "spki_der",
    "spki_pin",
    "summarize",
    "trust_stores",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pinscan' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
