# SPDX-License-Identifier: Apache-2.0
"""What pinscan knows of the public PKI, shipped in the package and built from public data by
the scripts in ``scripts/`` (never read from ``data/`` at run time): the CA catalog
(``ca_catalog.parquet``, read by :mod:`.graph`; derived by :mod:`.derive`, with :mod:`.der` for
what the Rust core has no column for) and the platform root stores (``trust_stores.parquet``,
read by :mod:`.stores`)."""
