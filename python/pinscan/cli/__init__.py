# SPDX-License-Identifier: Apache-2.0
"""The ``pinscan`` command line: the only place that reads flags and ``PINSCAN_*`` variables.

Every command prints problems as ``pinscan: <file>: <what>`` on stderr, never a traceback, and
exits 2 when an input could not be read (click exits 2 on usage errors too).
"""

from __future__ import annotations

import click

from pinscan._core import __version__
from pinscan.cli.pin import pin


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pinscan")
def main() -> None:
    """Which keys your hosts really serve, and whether pinned clients keep working."""


main.add_command(pin)
