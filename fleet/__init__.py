# SPDX-License-Identifier: Apache-2.0
"""A local fleet of TLS servers, all on loopback, for the tests, ``make demo`` and the benchmarks.

Not part of pinscan: it lives at the repository root, beside ``tests/``, ``demo/`` and
``benches/`` which all use it, and the wheel leaves it out. Each finds it by Python's own rule:
pytest through ``pythonpath = ["."]``, the demo and benchmarks because they run as modules
from the root (``python -m demo.run``, ``python -m benches.bench_scan``).

- :mod:`fleet.pki`: the certificates (a private CA, leaves of every kind, huge chains).
- :mod:`fleet.servers`: in-process servers, good and hostile, each a context manager.
- :mod:`fleet.real`: real server software (nginx, ``openssl s_server``) run as subprocesses.
"""
