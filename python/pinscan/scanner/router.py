# SPDX-License-Identifier: Apache-2.0
"""The front door of every scan: :func:`scan` and :func:`scan_async` (``pinscan.scan``,
``pinscan.scan_async``, and ``pinscan scan``, which only parses options and calls :func:`scan`).

A scan goes one of four ways, chosen here and checked here once (:class:`Route`):

- ``dataset``: the engine scans into one dataset directory (``out``, or a new temporary one), in
  this process or in ``config.processes`` worker processes whose shards are folded into it at the
  end (:mod:`~.processes`);
- ``history``: into a new scan of a history, staged and committed (:mod:`~.history`);
- ``shard``: one shard of a sharded scan, in this process (:mod:`~.shards`);
- ``dask``: every shard of a sharded scan, as Dask tasks (:mod:`~.dask`).

Whatever the way, the inventory is opened (and the settings checked) before anything is written,
and ``policies`` judge the scan once it is whole, into its ``pin_results`` (:func:`_judge`): a
history's scan in its stage before the commit, a sharded scan when its last shard is done.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from pinscan.config import ScanConfig, checked
from pinscan.dataset import shards as layout
from pinscan.dataset.meta import read_meta
from pinscan.dataset.writer import write_pin_results
from pinscan.errors import ConfigError, InputError
from pinscan.inventory import Inventory, read_inventory
from pinscan.records import Endpoint, Target
from pinscan.scanner import engine, processes
from pinscan.scanner import shards as one_shard

# Lazy for start-up time: what a scan needs only after its first connection (opening the
# dataset it wrote, judging it), or on other ways (Dask, a history), is imported there, so that
# a scan's first handshake does not wait for polars and the policy readers.
if TYPE_CHECKING:
    from pinscan.dataset import ScanDataset
    from pinscan.policy.model import Policy

    #: A policy, or a file of policies (every policy in it is used).
    PolicyLike = Policy | str | os.PathLike[str]

#: ``pinscan.scanner.dask.RETRIES``, restated so that the signature imports no Dask code
#: (tests/test_dask.py checks that it is still the same).
DASK_RETRIES = 2

InventoryLike = str | os.PathLike[str] | Inventory | Iterable[str | Target]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a scan goes, with every combination of the arguments checked once: a bad one is a
    :class:`~pinscan.errors.ConfigError` naming the argument, before anything is read or sent."""

    out: Path | None = None
    history: Path | None = None
    shard: layout.Shard | None = None
    #: A ``dask.distributed.Client``, ``"local"`` or a scheduler address.
    dask: Any = None
    shards: int | None = None
    resume: bool = False
    scan_id: str | None = None
    on_endpoint: Callable[[Endpoint], None] | None = None

    def __post_init__(self) -> None:
        if self.out is not None and self.history is not None:
            msg = (
                "a scan goes to a dataset (out=, -o) or to a history (history=, --history), "
                "not both"
            )
            raise ConfigError("history", msg)
        if self.history is not None:
            if self.shard is not None or self.dask is not None or self.shards is not None:
                msg = "a history commits one whole scan: it is not sharded (--shard, --dask)"
                raise ConfigError("history", msg)
            if self.scan_id is not None:
                raise ConfigError("scan_id", "a history names its scans itself: give no scan_id")
        if self.shard is not None and self.dask is not None:
            msg = "give shard= (--shard: one shard, here) or dask= (--dask: every shard), not both"
            raise ConfigError("shard", msg)
        if self.shards is not None and self.dask is None:
            msg = "is the number of shards of a Dask scan (--shards): give dask= (--dask) too"
            raise ConfigError("shards", msg)
        if self.shards is not None and not (
            isinstance(self.shards, int) and not isinstance(self.shards, bool) and self.shards >= 1
        ):
            raise ConfigError("shards", f"must be an integer from 1, not {self.shards!r}")
        if (self.shard is not None or self.dask is not None) and self.out is None:
            raise ConfigError("out", "a sharded scan needs an output directory (out=, -o)")
        if self.dask is not None and self.on_endpoint is not None:
            msg = "is not available with dask=: the workers write the endpoints"
            raise ConfigError("on_endpoint", msg)
        if self.resume and self.out is None and self.history is None:
            msg = "finishes a scan in a dataset (out=, -o) or a history (history=): give one"
            raise ConfigError("resume", msg)

    @property
    def way(self) -> str:
        """``dataset``, ``history``, ``shard`` or ``dask``."""
        if self.dask is not None:
            return "dask"
        if self.shard is not None:
            return "shard"
        return "history" if self.history is not None else "dataset"


@dataclass(frozen=True, slots=True)
class Written:
    """What a scan wrote (:func:`scan_to`): a dataset directory (sharded or not), or the scan
    ``scan_id`` of the history ``path``. :meth:`open` reads it as :func:`scan` returns it."""

    path: Path
    #: The scan's id when ``path`` is a history; None for a dataset directory.
    history_scan: str | None = None

    def open(self) -> ScanDataset:
        """The dataset, as :func:`pinscan.open` reads it (its parts checked)."""
        from pinscan.dataset import open as open_dataset

        return open_dataset(self.path, scans=self.history_scan)

    def meta(self) -> dict[str, Any]:
        """The scan's ``scan.json``, as ``open().meta`` has it: a plain dataset's read alone,
        without polars (all that a command that keeps its dataset prints needs)."""
        if self.history_scan is None and not layout.is_sharded(self.path):
            return read_meta(self.path)
        return self.open().meta


def scan(
    inventory: InventoryLike,
    out: str | os.PathLike[str] | None = None,
    *,
    config: ScanConfig | None = None,
    history: str | os.PathLike[str] | None = None,
    shard: str | layout.Shard | None = None,
    dask: Any = None,
    shards: int | None = None,
    resume: bool = False,
    policies: Sequence[PolicyLike] = (),
    inventory_format: str | None = None,
    on_endpoint: Callable[[Endpoint], None] | None = None,
    arguments: dict[str, Any] | None = None,
    scan_id: str | None = None,
    dask_retries: int = DASK_RETRIES,
    progress: bool = False,
    on_status: processes.OnStatus | None = None,
) -> ScanDataset:
    """Scan every endpoint of an inventory; return the dataset written.

    Parameters
    ----------
    inventory
        A path to an inventory (text lines, CSV or Parquet), an :class:`~pinscan.inventory.
        Inventory`, or an iterable of inventory lines (``"host"``, ``"host:port"``,
        ``"[v6]:port sni"``) or :class:`~pinscan.records.Target`.
    out
        The dataset directory; a new temporary directory when omitted (and no ``history``).
    config
        The scan's settings (:class:`~pinscan.config.ScanConfig`); the defaults when omitted.
    history
        Instead of ``out``: add the scan to this history, as ``pinscan scan --history`` does.
        Returns the committed scan (see :mod:`pinscan.dataset.history`).
    shard
        ``"I/N"``: scan only shard I of N into the sharded dataset ``out`` (see
        :mod:`pinscan.dataset.shards`); the result is the whole dataset as far as it is done.
    dask, shards
        A ``dask.distributed.Client``, ``"local"`` or a scheduler address: scan ``out`` in
        ``shards`` shards as Dask tasks (see :mod:`pinscan.scanner.dask`); ``dask_retries``
        attempts after the first for a shard that fails, ``progress`` a bar over shards.
    resume
        Finish the interrupted scan in ``out`` (or the newest one of ``history``).
    policies
        :class:`~pinscan.policy.model.Policy` objects or policy files: the scan is judged by
        them into its ``pin_results`` table, as ``pinscan scan --policy`` does (a sharded scan
        once its last shard is done).
    on_endpoint
        Called with each :class:`~pinscan.records.Endpoint` as it completes, in this process: a
        scan with it runs in one process unless ``config.processes`` says otherwise, which is
        refused.
    on_status
        Called with a status and a number of endpoints that ended with it, as they complete,
        whether in this process or in the scan's worker processes (``config.processes``).
    arguments, scan_id
        What ``scan.json`` records as the scan's arguments; the new scan's id.

    Works in Jupyter too, where an event loop is already running: the scan then runs on a
    thread of its own.

    Examples
    --------
    >>> ds = pinscan.scan(["example.com", "example.org:8443"], "out")  # doctest: +SKIP
    >>> ds.endpoints.select("target", "ip", "status", "spki_sha256").collect()  # doctest: +SKIP
    """
    return scan_to(
        inventory, out, config=config, history=history, shard=shard, dask=dask, shards=shards,
        resume=resume, policies=policies, inventory_format=inventory_format,
        on_endpoint=on_endpoint, arguments=arguments, scan_id=scan_id,
        dask_retries=dask_retries, progress=progress, on_status=on_status,
    ).open()  # fmt: skip


def scan_to(
    inventory: InventoryLike,
    out: str | os.PathLike[str] | None = None,
    *,
    config: ScanConfig | None = None,
    history: str | os.PathLike[str] | None = None,
    shard: str | layout.Shard | None = None,
    dask: Any = None,
    shards: int | None = None,
    resume: bool = False,
    policies: Sequence[PolicyLike] = (),
    inventory_format: str | None = None,
    on_endpoint: Callable[[Endpoint], None] | None = None,
    arguments: dict[str, Any] | None = None,
    scan_id: str | None = None,
    dask_retries: int = DASK_RETRIES,
    progress: bool = False,
    on_status: processes.OnStatus | None = None,
) -> Written:
    """:func:`scan`, returning where the scan went (:class:`Written`) rather than the dataset
    opened: what ``pinscan scan`` calls, which opens the dataset only to print its rows or
    verdicts (opening it takes polars, a tenth of a second)."""
    route = _route(out, history, shard, dask, shards, resume, scan_id, on_endpoint)
    config = _checked(config, route)
    judging = _policies(policies)
    if route.way in ("dataset", "history"):
        return engine.run_blocking(
            _scan_async, inventory, route, config=config, policies=judging,
            inventory_format=inventory_format, arguments=arguments, on_status=on_status,
        )  # fmt: skip
    items = _opened(inventory, inventory_format, config.starttls)
    args = _arguments(inventory, arguments, config)
    assert route.out is not None  # Route checked it
    if route.way == "dask":
        from pinscan.scanner import dask as on_dask

        on_dask.scan_dask(
            items, route.out, dask, shards=route.shards, config=config, resume=resume,
            arguments=args, scan_id=scan_id, retries=dask_retries, progress=progress,
        )  # fmt: skip
    else:
        assert route.shard is not None
        one_shard.scan_shard(
            items, route.out, route.shard, config=config, resume=resume,
            on_endpoint=processes.with_status(on_endpoint, on_status), arguments=args,
            scan_id=scan_id,
        )  # fmt: skip
    written = Written(route.out)
    if judging and written.meta()["complete"]:
        _judge(route.out, judging)
    return written


async def scan_async(
    inventory: InventoryLike,
    out: str | os.PathLike[str] | None = None,
    *,
    config: ScanConfig | None = None,
    history: str | os.PathLike[str] | None = None,
    shard: str | layout.Shard | None = None,
    dask: Any = None,
    shards: int | None = None,
    resume: bool = False,
    policies: Sequence[PolicyLike] = (),
    inventory_format: str | None = None,
    on_endpoint: Callable[[Endpoint], None] | None = None,
    arguments: dict[str, Any] | None = None,
    scan_id: str | None = None,
    dask_retries: int = DASK_RETRIES,
    progress: bool = False,
    on_status: processes.OnStatus | None = None,
) -> ScanDataset:
    """:func:`scan`, for code that already runs an event loop (anyio: asyncio or trio). A scan of
    one dataset or a history runs on that loop; a sharded one on a thread of its own."""
    route = _route(out, history, shard, dask, shards, resume, scan_id, on_endpoint)
    if route.way in ("shard", "dask"):
        return await anyio.to_thread.run_sync(
            lambda: scan(
                inventory, out, config=config, shard=shard, dask=dask, shards=shards,
                resume=resume, policies=policies, inventory_format=inventory_format,
                on_endpoint=on_endpoint, arguments=arguments, scan_id=scan_id,
                dask_retries=dask_retries, progress=progress, on_status=on_status,
            )
        )  # fmt: skip
    written = await _scan_async(
        inventory, route, config=_checked(config, route), policies=_policies(policies),
        inventory_format=inventory_format, arguments=arguments, on_status=on_status,
    )  # fmt: skip
    return await anyio.to_thread.run_sync(written.open)


async def _scan_async(
    inventory: InventoryLike,
    route: Route,
    *,
    config: ScanConfig,
    policies: list[Policy],
    inventory_format: str | None,
    arguments: dict[str, Any] | None,
    on_status: processes.OnStatus | None = None,
) -> Written:
    """A scan of one dataset or a history, on the running loop."""
    # The inventory is opened before anything is written: a bad one leaves nothing behind.
    items = _opened(inventory, inventory_format, config.starttls)
    options = {
        "config": config,
        "arguments": _arguments(inventory, arguments, config),
        "on_endpoint": route.on_endpoint,
    }
    judge = (lambda root: _judge(root, policies)) if policies else None
    if route.history is not None:
        from pinscan.scanner.history import scan_history

        scan_id = await scan_history(
            items, route.history, resume=route.resume, judge=judge, on_status=on_status, **options
        )
        return Written(route.history, scan_id)
    root = route.out if route.out is not None else Path(tempfile.mkdtemp(prefix="pinscan-"))
    await processes.scan_dataset(
        items, root, resume=route.resume, scan_id=route.scan_id, on_status=on_status, **options
    )  # fmt: skip
    if judge is not None:
        await anyio.to_thread.run_sync(judge, root)
    return Written(root)


def _checked(config: Any, route: Route) -> ScanConfig:
    """The scan's settings, and whether its ``processes`` go with its way."""
    config = checked(config)
    if config.processes is not None and config.processes > 1:
        if route.way not in ("dataset", "history"):
            msg = (
                "scans a dataset or a history in several processes; a shard (shard=) and a Dask "
                "task run in one each (give processes=1 or None)"
            )
            raise ConfigError("processes", msg)
        if route.on_endpoint is not None:
            msg = "calls on_endpoint in this process: give processes=1, or on_status"
            raise ConfigError("processes", msg)
    return config


def _judge(root: Path, policies: list[Policy]) -> None:
    """Judges the whole scan in ``root`` by ``policies``: its ``pin_results``, replaced whole."""
    from pinscan.dataset import open as open_dataset
    from pinscan.policy.evaluate import evaluate

    write_pin_results(root, evaluate(open_dataset(root), policies))


def _route(
    out: str | os.PathLike[str] | None,
    history: str | os.PathLike[str] | None,
    shard: str | layout.Shard | None,
    dask: Any,
    shards: int | None,
    resume: bool | None,
    scan_id: str | None,
    on_endpoint: Callable[[Endpoint], None] | None,
) -> Route:
    return Route(
        out=None if out is None else Path(out),
        history=None if history is None else Path(history),
        shard=None if shard is None else layout.Shard.parse(shard),
        dask=dask,
        shards=shards,
        resume=bool(resume),
        scan_id=scan_id,
        on_endpoint=on_endpoint,
    )


def _policies(policies: Sequence[PolicyLike] | None) -> list[Policy]:
    """Policy objects, and every policy of the files given by path; read before the scan, so
    that a broken file stops it before anything is sent."""
    if policies is None or (isinstance(policies, Sequence) and not policies):
        return []  # and the policy readers are not imported
    from pinscan.policy import load_policies
    from pinscan.policy.model import Policy

    if isinstance(policies, str | os.PathLike | Policy):
        policies = [policies]
    out: list[Policy] = []
    for policy in policies or ():
        if isinstance(policy, Policy):
            out.append(policy)
        elif isinstance(policy, str | os.PathLike):
            out += load_policies(policy)
        else:
            msg = f"must be Policy objects or policy files, not {type(policy).__name__}"
            raise ConfigError("policies", msg)
    return out


def _opened(
    inventory: InventoryLike, fmt: str | None, starttls: str | None = None
) -> engine.TargetFeed:
    """The inventory, opened (files) or parsed (lines from Python) by the inventory's rules;
    ``starttls`` (``ScanConfig.starttls``) is the protocol of its lines that name none."""
    if isinstance(inventory, Inventory | one_shard.ShardItems):
        return inventory
    if isinstance(inventory, str | os.PathLike):
        return read_inventory(inventory, format=fmt, starttls=starttls)
    if isinstance(inventory, bytes | bytearray) or not isinstance(inventory, Iterable):
        msg = (
            "must be a path, an Inventory (pinscan.read_inventory) or an iterable of lines or "
            f"Targets, not {type(inventory).__name__}"
        )
        raise InputError("inventory", msg)
    # Lines (or Targets) from Python: parsed like a text inventory, so the same rules apply.
    lines = []
    for number, item in enumerate(inventory, 1):
        if isinstance(item, Target):
            if item.starttls and "://" not in item.target:  # its protocol, as a URL scheme
                lines.append(f"{item.starttls}://{item.target}")
                continue
            lines.append(item.target)
        elif isinstance(item, str):
            lines.append(item)
        else:
            msg = f"item {number} is {type(item).__name__}, not a line (str) or a Target"
            raise InputError("inventory", msg)
    return read_inventory(io.BytesIO("\n".join(lines).encode()), format="text", starttls=starttls)


def _arguments(
    inventory: InventoryLike, arguments: dict[str, Any] | None, config: ScanConfig
) -> dict[str, Any]:
    """What ``scan.json`` records: where the inventory came from, the caller's arguments, the
    platform stores verified against, each with its version and date (``android 17.0.0_r1
    (2026-06-21)``; ``NAME=FILE`` as given), and with a ``ca_bundle``, its ``anchor_store``."""
    if isinstance(inventory, Inventory):
        described = inventory.name
    elif isinstance(inventory, str | os.PathLike):
        described = os.fspath(inventory)
    else:
        described = "<python iterable>"
    from pinscan.catalog.stores import describe  # lazy for start-up time (pyarrow)

    verified_against = [s if "=" in s else describe(s) for s in config.trust_stores]
    recorded = {"inventory": described, **(arguments or {}), "trust_stores": verified_against}
    if config.ca_bundle is not None:
        # Where the bundle's roots sit on an Android device: how its configs are judged.
        recorded["anchor_store"] = config.anchor_store
    return recorded


__all__ = ["DASK_RETRIES", "InventoryLike", "Route", "Written", "scan", "scan_async", "scan_to"]
