# SPDX-License-Identifier: Apache-2.0
"""The Parquet dataset a scan writes, and reading it back."""

from pinscan.dataset.reader import ScanDataset, open
from pinscan.dataset.writer import DatasetWriter

__all__ = ["DatasetWriter", "ScanDataset", "open"]
