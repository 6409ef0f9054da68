#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copies the public CA data (../shared/data: CCADB certificates, the Let's Encrypt hierarchy,
# platform root stores; sources, commits and licences in its README.md) into
# data/ca-sources.tar.xz, byte for byte and reproducibly (sorted names, fixed times and owners),
# so that CI, which has no ../shared, can rebuild the shipped catalog and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
tar --sort=name --mtime='2026-08-21 00:00Z' --owner=0 --group=0 --numeric-owner \
    --mode='u+rw,go+r' -cf - -C "$shared" data | xz -9e -T2 > data/ca-sources.tar.xz.tmp
mv data/ca-sources.tar.xz.tmp data/ca-sources.tar.xz
sha256sum data/ca-sources.tar.xz
