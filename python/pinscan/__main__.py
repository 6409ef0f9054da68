# SPDX-License-Identifier: Apache-2.0
"""``python -m pinscan``: the ``pinscan`` command."""

from pinscan.cli import run

run()
