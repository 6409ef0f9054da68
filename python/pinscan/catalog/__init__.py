# SPDX-License-Identifier: Apache-2.0
"""Public CA data shipped in the package, built by scripts/ from data/ca-sources.tar.xz: the
platform root stores (:mod:`pinscan.catalog.stores`)."""
