# SPDX-License-Identifier: Apache-2.0
"""The exit statuses of every ``pinscan`` command, which cron jobs and CI gate on.

Only 1 asks a scheduled job to act: 2 means the job itself could not be done, so a bug or an
unreadable file never reads as findings (nor as a clean run).
"""

from __future__ import annotations

#: The command ran, and found nothing to act on (``report`` always, when it could read OUT).
OK = 0
#: Findings a scheduled job should act on: failing pin verdicts, new CT alerts, a ``--fail-on``
#: change, a crossed audit threshold.
FINDINGS = 1
#: The job could not be done: usage errors (click's own exit status), unreadable input,
#: unwritable output, a CT log that failed to read or verify, and internal errors.
ERROR = 2
#: Interrupted by Ctrl-C (128 + SIGINT, as shells report it); what was written is kept.
INTERRUPTED = 130

#: The pin verdicts that make ``check`` and ``scan --policy`` exit :data:`FINDINGS`.
FAILING = ("fail", "error")

__all__ = ["ERROR", "FAILING", "FINDINGS", "INTERRUPTED", "OK"]
