# SPDX-License-Identifier: Apache-2.0
"""``make demo``: ``python -m demo.run`` from the repository root, so that the local TLS fleet
(``fleet/`` at the root) is importable by Python's own rule."""
