# SPDX-License-Identifier: Apache-2.0
"""Benchmarks against the peers, with their figures in docs/benchmarks.md. Each runs as a module
from the repository root (``.venv/bin/python -m benches.bench_scan``), so that the local TLS
fleet (``fleet/`` at the root) and the sibling helpers import by Python's own rule."""
