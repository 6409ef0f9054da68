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


class AuditConfigError(ConfigError):
    """An audit configuration that cannot be used: ``source`` is the file, ``key`` the dotted
    key at fault (``thresholds.max_unverified``), ``None`` for the file as a whole. A
    :class:`ConfigError` whose ``setting`` is ``source: key``; ``pinscan.audit.ConfigError``
    names it too."""

    def __init__(self, source: str, key: str | None, message: str) -> None:
        super().__init__(f"{source}: {key}" if key else source, message)
        self.source = source
        self.key = key
        self.message = f"{key}: {message}" if key else message


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


class ArtifactError(InputError):
    """An app artifact (APK, AAB, split APKs, IPA, ``.app`` directory) pinscan cannot read:
    not a zip, truncated, encrypted, over a limit (a zip bomb). ``source`` names the artifact,
    and the member when one is at fault (``app.apk!classes2.dex``)."""


class ShardError(PinscanError):
    """A shard spec that names no shard (``--shard I/N``), or a sharded output used
    inconsistently (another number of shards than it was started with)."""


class ResolveError(PinscanError):
    """A name that did not resolve; the scanner makes it a ``dns_error`` row.

    ``transient`` says whether asking again later may succeed (the resolver could not be reached,
    or did not answer in time).
    """

    def __init__(self, host: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.host = host
        self.message = message
        self.transient = transient


# --- Certificate Transparency monitoring (pinscan.ct) -------------------------------------------


class FetchError(PinscanError):
    """A request to a CT log or crt.sh that failed for good (after retries), or a response that
    is not usable; the message names the URL."""


class SignatureError(PinscanError):
    """A tree head whose signature is missing, malformed or wrong."""


class LogError(PinscanError):
    """A log that could not be read or that failed verification; the message names it."""


class StateError(PinscanError):
    """A state directory that is locked, unwritable or holds a file pinscan cannot read."""


class SuggestError(InputError):
    """``pinscan suggest`` found no pin-set for the domain that passes ``pinscan check`` on the
    scan (the client would refuse the file, or an endpoint would fail it): the message says why
    and names the endpoints."""
