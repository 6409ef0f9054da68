# SPDX-License-Identifier: Apache-2.0
"""Scan settings as frozen dataclasses, checked when they are made. Only the CLI reads flags and
``PINSCAN_*`` variables; it builds these and hands them down, and each layer reads only its own
fields.

Each setting's default and bounds are stated here, once: the defaults are the fields', the
bounds of the numbers are in :attr:`ScanConfig.BOUNDS` and :attr:`Timeouts.BOUNDS`, and
``pinscan scan``'s options and ``pinscan audit``'s ``[scan]`` table take theirs from these. A value
of the wrong type or out of range raises :class:`~pinscan.errors.ConfigError` (a ``ValueError``)
naming the field and what it allows, so that no bad value reaches a scan: ``concurrency=0`` would
otherwise scan nothing and call it complete.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pinscan.errors import ConfigError
from pinscan.records import ANCHOR_STORES, ENGINES, STARTTLS, TRUST_STORES


@dataclass(frozen=True, slots=True)
class Bounds:
    """The values of one numeric setting: an integer (``kind`` ``int``) or a finite number
    (``float``, integers accepted) from ``minimum`` to ``maximum`` (no upper bound when
    ``None``); ``None`` as well when ``optional``. ``True`` and ``False`` are not numbers here."""

    kind: type[int] | type[float]
    minimum: float
    maximum: float | None = None
    optional: bool = False

    def describe(self) -> str:
        """What the setting accepts, as messages say it: ``an integer from 1 to 100000``."""
        what = "an integer" if self.kind is int else "a finite number"
        if self.maximum is None:
            return f"{what} of at least {self.minimum:g}"
        return f"{what} from {self.minimum:g} to {self.maximum:g}"

    def check(self, setting: str, value: Any) -> Any:
        """``value`` as an ``int`` or ``float``; :class:`~pinscan.errors.ConfigError` naming
        ``setting`` when it is not one of the values described."""
        if value is None and self.optional:
            return None
        number: float | None = None
        if not isinstance(value, bool):
            if self.kind is int and isinstance(value, numbers.Integral):
                number = int(value)
            elif self.kind is float and isinstance(value, numbers.Real):
                number = float(value)
        if (
            number is None
            or not math.isfinite(number)
            or number < self.minimum
            or (self.maximum is not None and number > self.maximum)
        ):
            raise ConfigError(setting, f"must be {self.describe()}, not {_shown(value)}")
        return number


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``deadline`` bounds DNS, connect and handshake of one target together, enforced by
    cancellation, so that no target can hang a scan whatever the server does."""

    connect: float = 5.0
    handshake: float = 10.0
    deadline: float = 30.0

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "connect": Bounds(float, 0.01),
        "handshake": Bounds(float, 0.01),
        "deadline": Bounds(float, 0.01),
    }

    def __post_init__(self) -> None:
        _check_numbers(self, "Timeouts")


@dataclass(frozen=True, slots=True)
class ScanConfig:
    concurrency: int = 500
    #: New connections per second across the whole scan; ``None`` for no limit.
    rate: float | None = None
    #: Connections open at once to one address, so a fleet behind one load balancer is not flooded.
    per_address: int = 16
    #: Extra attempts after a transient failure (timeouts, resets, refused during a restart).
    retries: int = 1
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: Scan only the first address a name resolves to, instead of every address.
    first_address: bool = False
    #: The platform root stores each chain is verified against, each on its own, in this order
    #: (the first that verifies is the endpoint's ``trust_store``): names of
    #: :data:`~pinscan.records.TRUST_STORES`, which pinscan ships, or ``NAME=FILE``, a PEM bundle
    #: standing for that platform's store (the file must exist). Every one by default: a policy
    #: is judged on its own platform's path, and a policy given to ``check`` later needs it too.
    trust_stores: tuple[str, ...] = tuple(TRUST_STORES)
    #: Extra trust anchors (private PKI), a store of their own after ``trust_stores``; the file
    #: must exist.
    ca_bundle: Path | None = None
    #: Where the ``ca_bundle`` roots sit on an Android device (:data:`ANCHOR_STORES`): recorded
    #: with the scan, so Android configs are judged as the device would.
    anchor_store: str = "system"
    system_store: bool = False
    #: Scanning processes on this machine, each scanning its share of the inventory (split as
    #: ``--shard`` splits it) into a shard of its own, folded into one dataset at the end;
    #: ``None``: one per core (one alone for an inventory too small to gain from more, or with
    #: ``on_endpoint``, which is called in this process); ``1``: this process only.
    processes: int | None = None
    #: Child processes that build chains' paths while the scan goes on; ``None``: one when the
    #: machine has two cores or more, else none (``0``: verify in the scanning process).
    verify_processes: int | None = None
    #: ALPN protocols offered in the ClientHello (none when empty).
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    #: The TLS engine (a name of :data:`~pinscan.records.ENGINES`): ``auto`` is rustls, and
    #: OpenSSL again for an endpoint rustls cannot reach (TLS 1.0/1.1 only, legacy suites, a
    #: chain over 64 KB); ``rustls`` or ``openssl`` use that one alone.
    engine: str = "auto"
    #: The protocol spoken before TLS (a name of :data:`~pinscan.records.STARTTLS`: ``smtp``,
    #: ``imap``...) on every inventory line that does not name its own with a URL scheme, whose
    #: default port it then is; ``None``: TLS from the first byte. Applied where the scan opens
    #: its inventory (a path or lines; an :class:`~pinscan.inventory.Inventory` has its own).
    starttls: str | None = None
    #: Flush a part file after this many endpoints or seconds, whichever comes first.
    flush_rows: int = 5000
    flush_seconds: float = 10.0

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "concurrency": Bounds(int, 1, 100_000),
        "rate": Bounds(float, 0.1, optional=True),
        "per_address": Bounds(int, 1),
        "retries": Bounds(int, 0, 10),
        "processes": Bounds(int, 1, 1024, optional=True),
        "verify_processes": Bounds(int, 0, 64, optional=True),
        "flush_rows": Bounds(int, 1),
        "flush_seconds": Bounds(float, 0.1),
    }

    def __post_init__(self) -> None:
        _check_numbers(self, "ScanConfig")
        if not isinstance(self.timeouts, Timeouts):
            reason = f"must be a Timeouts, not {_shown(self.timeouts)}"
            raise ConfigError("ScanConfig.timeouts", reason)
        for name in ("first_address", "system_store"):
            if not isinstance(getattr(self, name), bool):
                value = _shown(getattr(self, name))
                raise ConfigError(f"ScanConfig.{name}", f"must be True or False, not {value}")
        if self.ca_bundle is not None:
            if not isinstance(self.ca_bundle, str | os.PathLike):
                reason = f"must be a path or None, not {_shown(self.ca_bundle)}"
                raise ConfigError("ScanConfig.ca_bundle", reason)
            bundle = Path(self.ca_bundle)
            if not bundle.is_file():
                raise ConfigError("ScanConfig.ca_bundle", f"no such file: {bundle}")
            object.__setattr__(self, "ca_bundle", bundle)
        if self.anchor_store not in ANCHOR_STORES:
            reason = f"must be one of {', '.join(ANCHOR_STORES)}, not {_shown(self.anchor_store)}"
            raise ConfigError("ScanConfig.anchor_store", reason)
        object.__setattr__(self, "alpn", _alpn(self.alpn))
        if self.engine not in ENGINES:
            reason = f"must be one of {', '.join(ENGINES)}, not {_shown(self.engine)}"
            raise ConfigError("ScanConfig.engine", reason)
        if self.starttls is not None and self.starttls not in STARTTLS:
            reason = f"must be None or one of {', '.join(STARTTLS)}, not {_shown(self.starttls)}"
            raise ConfigError("ScanConfig.starttls", reason)
        object.__setattr__(self, "trust_stores", trust_stores(self.trust_stores))


def checked(config: Any) -> ScanConfig:
    """``config`` as the settings of a scan: the defaults for ``None``; an error for anything
    but a :class:`ScanConfig` (which checked itself when it was made)."""
    if config is None:
        return ScanConfig()
    if not isinstance(config, ScanConfig):
        raise ConfigError("config", f"must be a pinscan.config.ScanConfig, not {_shown(config)}")
    return config


def trust_stores(value: Any, setting: str = "ScanConfig.trust_stores") -> tuple[str, ...]:
    """``value`` as the stores of a scan: a non-empty sequence of store names (or one string of
    them, comma-separated, as the command line and the audit file give them), each a name of
    :data:`~pinscan.records.TRUST_STORES` or ``NAME=FILE`` with an existing file, none twice."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, tuple | list) or not value:
        reason = f"must name one store or more, such as ('android', 'apple'), not {_shown(value)}"
        raise ConfigError(setting, reason)
    out: list[str] = []
    seen: set[str] = set()
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigError(setting, f"store names are strings, not {_shown(entry)}")
        name, equals, path = (part.strip() for part in entry.partition("="))
        if name not in TRUST_STORES:
            known = ", ".join(TRUST_STORES)
            raise ConfigError(setting, f"no store named {name!r}; pinscan has {known}")
        if name in seen:
            raise ConfigError(setting, f"{name!r} is given twice")
        if equals:
            if not Path(path).is_file():
                raise ConfigError(setting, f"{name}: no such file: {path}")
            entry = f"{name}={path}"
        else:
            entry = name
        seen.add(name)
        out.append(entry)
    return tuple(out)


def _check_numbers(settings: Any, owner: str) -> None:
    for name, bounds in settings.BOUNDS.items():
        value = bounds.check(f"{owner}.{name}", getattr(settings, name))
        object.__setattr__(settings, name, value)  # ints given for floats become floats


def _alpn(value: Any) -> tuple[str, ...]:
    """ALPN protocol names as OpenSSL takes them: 1 to 255 ASCII characters each."""
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        reason = f"must be a tuple of protocol names, such as ('h2',), not {_shown(value)}"
        raise ConfigError("ScanConfig.alpn", reason)
    for name in value:
        if not (isinstance(name, str) and name.isascii() and 1 <= len(name) <= 255):
            reason = f"protocol names are 1 to 255 ASCII characters, not {_shown(name)}"
            raise ConfigError("ScanConfig.alpn", reason)
    return tuple(value)


def _shown(value: Any) -> str:
    """A bad value for a message, with its type when the type is the problem: ``'5' (str)``."""
    if value is None or isinstance(value, int | float):
        return repr(value)
    return f"{value!r} ({type(value).__name__})"
