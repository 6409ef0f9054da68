# SPDX-License-Identifier: Apache-2.0
"""Scanning an inventory into a dataset: the engine (workers, limits, the dataset writer), what
one endpoint takes (resolve, handshake, verify, the verification child), and the ways a scan is
routed (one dataset, a history, shards, Dask)."""
