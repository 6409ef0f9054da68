# SPDX-License-Identifier: Apache-2.0
"""The options several commands share, declared and parsed in one place: ``--format text|json``,
``-q/--quiet``, ``--as-of``, ``--ca-catalog``, the policy options (``--policy``,
``--policy-format``, ``--android-debug``, ``--host``, ``--overlay``) and the rotation
scenarios' (``--scenarios``, ``--switch-to``, ``--backup-key``, ``--password``).

This module imports only click: ``pinscan <command> --help`` must not pay for polars or the
policy readers, so :func:`read_policies` imports them when it runs (lazy for start-up time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pinscan.errors import InputError

if TYPE_CHECKING:
    from pinscan.catalog.graph import Catalog
    from pinscan.policy.artifacts import Artifact
    from pinscan.policy.model import Policy

F = TypeVar("F", bound=Callable[..., Any])

#: What ``--policy-format`` accepts: :data:`pinscan.policy.FORMATS`, restated here because
#: importing pinscan.policy loads polars (tests/test_cli_start.py checks they agree).
POLICY_FORMATS = (
    "android",
    "trustkit-android",
    "ios",
    "trustkit",
    "okhttp",
    "hpkp",
    "curl",
    "chromium",
    "toml",
    "node",
    "ca-bundle",
    "artifact",
)


def output_format(help: str | None = None) -> Callable[[F], F]:
    """``--format text|json`` into the parameter ``output``: a table for people (the default),
    JSON for programs."""
    return click.option(
        "--format",
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help,
    )


def quiet(help: str) -> Callable[[F], F]:
    """``-q/--quiet``, for cron; ``help`` says what the command still prints."""
    return click.option("-q", "--quiet", is_flag=True, help=help)


class AsOf(click.ParamType):
    """``YYYY-MM-DD`` (00:00 UTC) or an ISO 8601 date and time (UTC unless it says otherwise)."""

    name = "DATE"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, dt.datetime):
            return value
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def as_of(help: str) -> Callable[[F], F]:
    """``--as-of DATE`` into ``as_of``: an aware datetime, or ``None`` for now."""
    return click.option("--as-of", type=AsOf(), help=help)


def ca_catalogs(help: str | None = None) -> Callable[[F], F]:
    """``--ca-catalog FILE`` (repeatable) into ``ca_catalogs``: PEM bundles of a private PKI's
    CA certificates, added to the shipped catalog (:meth:`pinscan.Catalog.with_pems`)."""
    return click.option(
        "--ca-catalog",
        "ca_catalogs",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help
        or "A PEM bundle of a private PKI's CA certificates (its root and intermediates), "
        "added to the shipped CA catalog. Repeat for several.",
    )


def policy_options(command, *, short: bool = True):  # type: ignore[no-untyped-def]
    """``--policy``, ``--policy-format`` and ``--android-debug``, shared by the commands that
    judge scans; `read_policies` reads the last from the context. ``short``: ``-p`` for
    ``--policy`` (``scan`` keeps ``-p`` for ``--port``, as tlsx users expect)."""
    command = click.option(
        "--android-debug",
        is_flag=True,
        expose_value=False,
        callback=lambda ctx, _, value: ctx.meta.__setitem__("android_debug", value),
        help="Apply Android <debug-overrides>, as a debuggable build does (release builds "
        "ignore them).",
    )(command)
    command = overlay_option(command)
    command = click.option(
        "--host",
        "policy_hosts",
        multiple=True,
        expose_value=False,
        metavar="NAME",
        callback=lambda ctx, _, value: ctx.meta.__setitem__("policy_hosts", value),
        help="A host a --policy that names none covers (a PEM bundle of CA certificates, as "
        "Node.js `ca` takes it; Node.js pins whose file names no host). Repeat for several.",
    )(command)
    command = click.option(
        "--policy-format",
        type=click.Choice(POLICY_FORMATS),
        help="Read every --policy as this format instead of telling by content.",
    )(command)
    return click.option(
        *(("-p", "--policy") if short else ("--policy",)),
        "policies",
        multiple=True,
        # A directory: an iOS .app bundle.
        type=click.Path(exists=True, path_type=Path),
        help="A pin policy: Android XML, iOS/TrustKit plist or JSON, OkHttp source, HPKP, "
        "Node.js checkServerIdentity, curl, Chromium JSON, pinscan TOML, a PEM bundle of CA "
        "certificates (with --host), or an app (APK, AAB, IPA, .app) and every policy in it. "
        "Repeat for several.",
    )(command)


def overlay_option(command):  # type: ignore[no-untyped-def]
    """``--overlay FILE`` (repeatable), into the context: `read_policies` and `pinscan pins`
    map the pins an app holds without a host by it."""
    return click.option(
        "--overlay",
        "overlays",
        multiple=True,
        expose_value=False,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        callback=lambda ctx, _, value: ctx.meta.__setitem__("overlays", value),
        help="A TOML file mapping the pins an app (--policy APK, AAB, IPA) holds without a host "
        "to the hosts they guard ([[map]] source or pins, hosts, match): they become the "
        "policy APP!overlay. Repeat for several.",
    )(command)


def scenario_options(command):  # type: ignore[no-untyped-def]
    """``--scenarios``, ``--switch-to``, ``--backup-key``, ``--password`` and ``--ca-catalog``:
    which rotations to play on the fleet (:func:`pinscan.rotation.analyse`) and what they need.
    Into ``scenarios`` (``None``: no analysis), ``switch_to``, ``backup_keys``, ``password`` and
    ``ca_catalogs``; :func:`scenario_inputs` turns them into analyse's arguments."""
    command = ca_catalogs(
        "A PEM bundle of a private PKI's CA certificates (its root and intermediates), added to "
        "the shipped CA catalog: its siblings and families become scenarios. Repeat for several."
    )(command)
    command = click.option(
        "--password", envvar="PINSCAN_PASSWORD", help="Password of encrypted --backup-key files."
    )(command)
    command = click.option(
        "-b", "--backup-key", "backup_keys", multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A spare key, public key or CSR kept offline (as suggest takes it): the "
        "backup_key scenario re-keys each leaf to it. Repeatable.",
    )(command)  # fmt: skip
    command = click.option(
        "--switch-to", "switch_to", multiple=True, metavar="FAMILY",
        help="A CA family (the catalog's owner, e.g. DigiCert) or CA name to play switch:FAMILY "
        "with, besides the other families the fleet uses. Repeatable.",
    )(command)  # fmt: skip
    return click.option(
        "--scenarios", metavar="all|routine|LIST",
        help="Play rotation scenarios on every pinned endpoint and print the lockout matrix: "
        "all, routine (renew_new_key and every sibling), or a comma list of kinds "
        "(renew_same_key, renew_new_key, sibling, switch, backup_key, root_removed) and names "
        "(sibling:R11, switch:DigiCert).",
    )(command)  # fmt: skip


#: The options :func:`scenario_options` adds besides ``--scenarios``, as they are named in errors.
SCENARIO_INPUTS = {
    "switch_to": "--switch-to",
    "backup_keys": "--backup-key",
    "ca_catalogs": "--ca-catalog",
}


def scenario_inputs(
    switch_to: tuple[str, ...],
    backup_keys: tuple[Path, ...],
    password: str | None,
    ca_catalogs: tuple[Path, ...],
) -> dict[str, Any]:
    """The keyword arguments of :func:`pinscan.rotation.analyse` the scenario options give:
    ``catalog`` (the shipped one plus ``--ca-catalog``), ``switch_to`` and ``backup_keys``."""
    from pinscan.catalog.graph import Catalog  # lazy for start-up time (see the module's doc)
    from pinscan.policy.suggest import BackupKey

    catalog: Catalog = Catalog.shipped()
    if ca_catalogs:
        catalog = catalog.with_pems(ca_catalogs)
    secret = password.encode() if password else None
    return {
        "catalog": catalog,
        "switch_to": switch_to,
        "backup_keys": [BackupKey.read(path, secret) for path in backup_keys],
    }


def read_policies(paths: tuple[Path, ...], format: str | None) -> list[Policy]:
    """Every policy in the ``--policy`` files, read as ``--policy-format`` says (or by content),
    with ``--android-debug`` and ``--overlay`` applied."""
    return read_policy_files(paths, format)[0]


def read_policy_files(
    paths: tuple[Path, ...], format: str | None
) -> tuple[list[Policy], list[Artifact]]:
    """:func:`read_policies`, and the app artifacts among the files (with what could not be
    read in them)."""
    meta = click.get_current_context().meta
    if not paths and not meta.get("overlays"):
        return [], []  # and the policy readers (polars) are not imported: a scan starts sooner
    # lazy for start-up time (see the module's doc)
    from pinscan.policy import load_policies
    from pinscan.policy.artifacts import read_artifact, sniff
    from pinscan.policy.artifacts.overlay import apply, read_overlay

    debug, hosts = meta.get("android_debug", False), meta.get("policy_hosts", ())
    overlays = [read_overlay(path) for path in meta.get("overlays", ())]
    read: list[Artifact | list[Policy]] = []
    for path in paths:
        if format in (None, "artifact") and sniff(path) is not None:
            read.append(read_artifact(path))
        else:
            read.append(load_policies(path, format, android_debug=debug, hosts=hosts))
    artifacts = [item for item in read if not isinstance(item, list)]
    if overlays:
        apply(overlays, artifacts)
    loaded = []
    for path, item in zip(paths, read, strict=True):
        found = item if isinstance(item, list) else item.policies
        if not found and not isinstance(item, list) and item.errors:
            more = f" (and {len(item.errors) - 1} more)" if len(item.errors) > 1 else ""
            raise InputError(
                str(path), f"holds no pin policy pinscan could read: {item.errors[0]}{more}"
            )
        if not found:  # an app whose pins, if any, are tied to no host
            msg = (
                "holds no pin policy a client loads; `pinscan pins` lists the pins in it, and "
                "--overlay maps those without a host to hosts"
            )
            raise InputError(str(path), msg)
        loaded += found
    return loaded, artifacts


__all__ = [
    "POLICY_FORMATS",
    "SCENARIO_INPUTS",
    "AsOf",
    "as_of",
    "ca_catalogs",
    "output_format",
    "overlay_option",
    "policy_options",
    "quiet",
    "read_policies",
    "read_policy_files",
    "scenario_inputs",
    "scenario_options",
]
