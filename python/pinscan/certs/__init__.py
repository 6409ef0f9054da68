# SPDX-License-Identifier: Apache-2.0
"""Certificates and keys from local files and bytes: the Rust core's table of certificates
(:mod:`~pinscan.certs.table`), keys and pins of PEM and DER objects (:mod:`~pinscan.certs.keys`)
and the PEM reader underneath (:mod:`~pinscan.certs.pem`)."""
