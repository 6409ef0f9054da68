# SPDX-License-Identifier: Apache-2.0
"""``pinscan pins ARTIFACT...``: the pins an app ships, read out of the APK, AAB or IPA."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from pinscan.cli import exits, options

# The artifact readers are imported in the command, so that `pinscan pins --help` starts fast
# (lazy for start-up time).
if TYPE_CHECKING:
    from pinscan.policy.artifacts import Artifact


@click.command()
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...", type=click.Path())
@options.output_format("One line per pin, or one JSON array with an object per artifact.")
@click.option(
    "--no-code",
    is_flag=True,
    help="Read configurations and bundled certificates only: do not search code (dex, native "
    "libraries, executables) for pin strings.",
)
@options.overlay_option
@click.pass_context
def pins_command(
    ctx: click.Context, artifacts: tuple[str, ...], output: str, no_code: bool
) -> None:
    """List the pins in each ARTIFACT (APK, AAB, split APKs, IPA, .app directory), where each
    is and which hosts it is tied to.

    The kind of artifact is told from its content. Each line is the pin, its kind (config: a
    Network Security Config, Info.plist or TrustKit entry; code: a pin string in dex, a native
    library or an executable; bundled_certificate: the key of a certificate in the app), its
    hosts (- when the artifact does not say; --overlay maps them) and its place
    (app.apk!res/xml/nsc.xml). What could not be read is one line each on stderr. Exits 1 when
    something in an artifact could not be read or a client would refuse a policy, 2 when an
    ARTIFACT or the overlay could not be read at all.
    """
    from pinscan.errors import InputError
    from pinscan.policy.artifacts import read_artifact
    from pinscan.policy.artifacts.overlay import apply, read_overlay

    overlays = [read_overlay(path) for path in ctx.meta.get("overlays", ())]
    status = exits.OK
    read: list[Artifact | dict[str, Any]] = []
    for path in artifacts:
        try:
            read.append(read_artifact(path, code=not no_code))
        except InputError as exc:
            _complain(str(exc))
            read.append(
                {"artifact": path, "kind": None, "policies": [], "pins": [], "errors": [str(exc)]}
            )
            status = exits.ERROR
    if overlays:
        apply(overlays, [item for item in read if not isinstance(item, dict)])
    documents: list[dict[str, Any]] = []
    for artifact in read:
        if isinstance(artifact, dict):
            documents.append(artifact)
            continue
        problems = [*artifact.errors, *_refused(artifact)]
        for line in problems:
            _complain(line)
        if problems and status == exits.OK:
            status = exits.FINDINGS
        documents.append(_document(artifact))
        if output == "text":
            for found in artifact.pins:
                hosts = ",".join(found.hosts) or "-"
                note = f"  ({found.note})" if found.note else ""
                click.echo(f"{found.label}  {found.kind}  {hosts}  {found.source}{note}")
    if output == "json":
        click.echo(json.dumps(documents, indent=2))
    ctx.exit(status)


def _refused(artifact: Artifact) -> list[str]:
    """A line for each policy its client would refuse."""
    return [f"{p.name}: {p.error}" for p in artifact.policies if p.error is not None]


def _document(artifact: Artifact) -> dict[str, Any]:
    return {
        "artifact": artifact.path,
        "kind": artifact.kind,
        "policies": [
            {"name": p.name, "format": p.format, "rules": len(p.rules), "error": p.error}
            for p in artifact.policies
        ],
        "pins": [found.to_dict() for found in artifact.pins],
        "errors": artifact.errors,
    }


def _complain(message: str) -> None:
    click.echo(f"pinscan: {message}", err=True)
