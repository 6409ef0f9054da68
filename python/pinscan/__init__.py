# SPDX-License-Identifier: Apache-2.0
"""pinscan: which keys your hosts really serve, and whether pinned clients keep working."""

from pinscan._core import __version__
from pinscan.certificates import COLUMNS, certificates
from pinscan.dataset import ScanDataset, open
from pinscan.errors import InputError, PinscanError
from pinscan.keys import read_certificates, spki_der, spki_pin

__all__ = [
    "COLUMNS",
    "InputError",
    "PinscanError",
    "ScanDataset",
    "__version__",
    "certificates",
    "open",
    "read_certificates",
    "spki_der",
    "spki_pin",
]
