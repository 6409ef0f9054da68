# SPDX-License-Identifier: Apache-2.0
"""``pinscan report``: a fleet's state at a glance, on the terminal, as JSON and as an HTML page."""

from pinscan.report.summary import Summary, summarize

__all__ = ["Summary", "summarize"]
