# SPDX-License-Identifier: Apache-2.0
"""The verification child's process (see :mod:`~.verify_pool`): the program it runs (`main`:
load the stores it is sent, then answer each batch of chains with their verdicts), the framing
of its pipes, the command line that starts it, and a child started ahead of its scan.

Nothing heavy is imported here (the child imports the path builder when it runs), so that the
command line can start a child first thing (`start_standby`): the child's interpreter, its
imports and its stores (a tenth of a second of another core) are then ready as the scan's first
chains come, instead of running beside the scan's first handshakes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

HEADER = struct.Struct("<Q")

#: A child started ahead of the scan that will take it (`start_standby`; `spawn` takes it).
_standby: list[subprocess.Popen[bytes]] = []


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_processes() -> int:
    """One child where there is a core to spare for it; none on a single core, nor in a frozen
    application, whose executable is not a Python interpreter, nor off POSIX (the pipes are
    waited on with ``select``)."""
    if os.name != "posix" or getattr(sys, "frozen", False) or not sys.executable:
        return 0
    return 1 if available_cores() >= 2 else 0


def command() -> list[str]:
    """The child's command line: this interpreter, finding this copy of pinscan first."""
    # The directory holding the `pinscan` package: as many levels up as this module is deep.
    package_root = str(Path(__file__).resolve().parents[__name__.count(".")])
    code = (
        f"import sys; sys.path.insert(0, {package_root!r}); "
        "from pinscan.scanner.verify_child import main; main()"
    )
    return [sys.executable, "-c", code]


def spawn() -> subprocess.Popen[bytes]:
    """A new child (`OSError` when it cannot start), or the one started ahead, if any."""
    try:
        return _standby.pop()
    except IndexError:
        return subprocess.Popen(
            command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )


def start_standby() -> None:
    """Starts a child now for this process's next scan to take, where a scan would start one.
    One that no scan takes ends at `drop_standby`, or when this process does (its input
    closes)."""
    if _standby or not default_processes():
        return
    with contextlib.suppress(OSError):  # the scan tries again, and says why
        _standby.append(spawn())


def drop_standby() -> None:
    """Ends a child no scan took. It holds nothing yet, so it is killed rather than told to
    end: it may still be importing, and a scan need not wait for that."""
    while _standby:
        child = _standby.pop()
        child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def frame(message: Any) -> bytes:
    """One message on the pipe, either way: its length, then its pickle."""
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def main() -> None:
    """The child: load the stores, then answer each batch of chains with their verdicts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when it ends
    # The path builder (pyca/cryptography) and the stores pinscan ships (pyarrow) are the
    # child's work: imported and read here, before the stores are sent (a child started ahead
    # of its scan does it beside the scan's own start), not by the process that starts it.
    from pinscan.catalog import stores
    from pinscan.errors import InputError
    from pinscan.records import TRUST_STORES
    from pinscan.scanner.verdicts import ChainVerdict
    from pinscan.scanner.verify import Verifier

    with contextlib.suppress(InputError):  # a broken install: said when the stores are loaded
        stores.roots(next(iter(TRUST_STORES)))  # reads the file: every store at once
    importlib.import_module("pinscan.scanner.path_builder")  # now, not at the first chain

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def receive() -> Any:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            raise EOFError
        return pickle.loads(stdin.read(HEADER.unpack(header)[0]))

    def send(message: Any) -> None:
        stdout.write(frame(message))
        stdout.flush()

    def fields(found: ChainVerdict) -> tuple[Any, ...]:
        return (
            found.verified,
            found.error,
            found.trust_store,
            found.names,
            found.days,
            found.path,
            found.detail,
            found.stores,
        )

    try:
        spec, now = receive()
        verifier = Verifier.from_spec(spec, now=now)
    except EOFError:
        return
    except Exception as exc:  # reported to the parent, which then verifies in-process
        send(("error", f"cannot load the trust stores: {exc}"))
        return
    send(("ready", None))
    while True:
        try:
            chains = receive()
        except EOFError:
            return
        send([fields(verifier.build(chain)) for chain in chains])


__all__ = [
    "available_cores",
    "command",
    "default_processes",
    "drop_standby",
    "frame",
    "main",
    "spawn",
    "start_standby",
]
