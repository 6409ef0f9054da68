# SPDX-License-Identifier: Apache-2.0
"""``pinscan audit``: the scheduled job in one call, driven by a small TOML file.

One run scans the inventory into the history (judging it by the policies, whose verdicts go into
the scan's ``pin_results``), diffs it against the previous scan of that history, writes the
report, and checks the thresholds. Its result is an :class:`AuditResult`, which says whether the
run ``passed`` or which thresholds it ``crossed``. Errors in the configuration are
:class:`ConfigError` (exit 2 on the command line), raised before anything is sent.

The rooms: :mod:`~pinscan.audit.config` reads the TOML file (documented key by key in
``docs/audit.md``), :mod:`~pinscan.audit.checks` measures the thresholds and
:mod:`~pinscan.audit.runner` runs the whole job.
"""

from __future__ import annotations

from pinscan.audit.checks import Check
from pinscan.audit.config import AuditConfig, Lockout, Thresholds, load_config
from pinscan.audit.runner import AuditResult, run
from pinscan.errors import AuditConfigError

#: The name docs/audit.md gives the configuration's error.
ConfigError = AuditConfigError

__all__ = [
    "AuditConfig",
    "AuditResult",
    "Check",
    "ConfigError",
    "Lockout",
    "Thresholds",
    "load_config",
    "run",
]
