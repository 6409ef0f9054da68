#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prints every requirement a development environment has, from pyproject.toml's ranges, one a
line: the build backend (maturin), pip itself, the runtime dependencies and the `test` extra.

It is the input of `make lock` (which pins them, with hashes, into requirements.lock.txt) and of
`make test-latest` (which installs the newest versions these ranges allow).
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
requirements = [
    *project["build-system"]["requires"],
    "pip",  # locked too, so that the installer is the same everywhere after the first step
    *project["project"]["dependencies"],
    *project["project"]["optional-dependencies"]["test"],
]
sys.stdout.write("".join(f"{r}\n" for r in requirements))
