# SPDX-License-Identifier: Apache-2.0
"""Pin policies: every client's format read into one rule model, evaluated against a scan."""
