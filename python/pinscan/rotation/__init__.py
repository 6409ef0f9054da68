# SPDX-License-Identifier: Apache-2.0
"""Rotation: will today's pins accept the chain a renewal, a CA switch or a re-key would serve?"""

from pinscan.rotation.lockout import Analysis, analyse, lockout
from pinscan.rotation.scenarios import Selection, parse_scenarios

__all__ = ["Analysis", "Selection", "analyse", "lockout", "parse_scenarios"]
