# SPDX-License-Identifier: Apache-2.0
"""Exceptions pinscan raises for misuse and unreadable input.

A bad certificate is never an exception: it is a row whose ``error`` column says what is wrong.
Exceptions are for input pinscan cannot turn into rows at all (an unreadable file, a file that
holds no key), and every one derives from :class:`PinscanError`.
"""

from __future__ import annotations


class PinscanError(Exception):
    """Base class of every error pinscan raises on purpose."""


class InputError(PinscanError):
    """An input file or object that cannot be read; ``source`` names it."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class ConfigError(PinscanError, ValueError):
    """A setting pinscan cannot use: of the wrong type, or outside its range. ``setting`` names
    it (``ScanConfig.concurrency``, ``Timeouts.deadline``, an audit file's ``scan.deadline``);
    ``reason`` says what is allowed and what was given."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


class DatasetError(PinscanError):
    """A scan dataset that cannot be created, resumed or read; ``path`` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class InventoryError(InputError):
    """An inventory line that cannot be a target, in strict mode; ``line`` is its 1-based number
    (the row number for Parquet)."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(source, f"line {line}: {message}")
        self.line = line


class PolicyError(InputError):
    """A policy file pinscan cannot read at all (not XML, not a plist, unknown format). A file
    that reads but that a client would reject is not an exception: its ``Policy.error`` says why
    and every host it covers gets the verdict ``error``. ``line`` is 1-based when known."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        super().__init__(source if line is None else f"{source}:{line}", message)
        self.line = line


class SuggestError(InputError):
    """``pinscan suggest`` found no pin-set for the domain that passes ``pinscan check`` on the
    scan (the client would refuse the file, or an endpoint would fail it): the message says why
    and names the endpoints."""
