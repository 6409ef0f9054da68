# SPDX-License-Identifier: Apache-2.0
"""Servers for tests, ``make demo`` and benchmarks, all on loopback.

- :mod:`fleet.pki`: the certificates (a private CA, leaves of every kind, huge chains).
- :mod:`fleet.servers`: in-process servers, good and hostile, each a context manager.
- :mod:`fleet.real`: real server software (nginx, ``openssl s_server``) run as subprocesses.
"""
