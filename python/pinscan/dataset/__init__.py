# SPDX-License-Identifier: Apache-2.0
"""The Parquet dataset a scan writes, histories of scans, and reading them back."""

from pinscan.dataset.reader import ScanDataset, open, select
from pinscan.dataset.writer import DatasetWriter

__all__ = ["DatasetWriter", "ScanDataset", "open", "select"]
