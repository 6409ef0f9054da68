# SPDX-License-Identifier: Apache-2.0
"""pinscan: which keys your hosts really serve, and whether pinned clients keep working."""

from pinscan import audit
from pinscan._core import __version__
from pinscan.certificates import COLUMNS, certificates
from pinscan.changes import diff
from pinscan.changes import summary as diff_summary
from pinscan.dataset import ScanDataset, open
from pinscan.errors import DatasetError, InputError, InventoryError, PinscanError, PolicyError
from pinscan.inventory import read_inventory
from pinscan.keys import read_certificates, spki_der, spki_pin
from pinscan.policy import evaluate, findings, load_policies, load_policy
from pinscan.report import Summary, summarize
from pinscan.scanner import scan, scan_async

__all__ = [
    "COLUMNS",
    "DatasetError",
    "InputError",
    "InventoryError",
    "PinscanError",
    "PolicyError",
    "ScanDataset",
    "Summary",
    "__version__",
    "audit",
    "certificates",
    "diff",
    "diff_summary",
    "evaluate",
    "findings",
    "load_policies",
    "load_policy",
    "open",
    "read_certificates",
    "read_inventory",
    "scan",
    "scan_async",
    "spki_der",
    "spki_pin",
    "summarize",
]
