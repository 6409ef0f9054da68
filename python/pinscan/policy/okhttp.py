# SPDX-License-Identifier: Apache-2.0
"""OkHttp ``CertificatePinner`` pins read out of Kotlin or Java source, and written as Kotlin.

Source code is not configuration, so this reader tokenises the file and evaluates only what is
knowable without running it (:mod:`._source_code`: literals, concatenation, templates and the
file's own constants). ``.add(...)`` calls are read from ``CertificatePinner.Builder()`` chains,
from ``.apply { add(...) }`` blocks and from a variable the builder is assigned to.
Arguments that cannot be resolved (another file's constant, a function call) are reported as
warnings and left out, so the policy says plainly what it could not see.

Semantics follow current OkHttp (``CertificatePinner.kt``, 4.3 and later): an exact host;
``*.x`` exactly one label below ``x``; ``**.x`` ``x`` and any depth below it; the pins of every
matching pattern united. ``add()`` validates each pattern and pin and throws on a bad one, so
the pinner is never built: the whole file then gets :attr:`Policy.error`, and the pattern of the
throwing call still gets a rule, so that its hosts are judged ``error`` too. Base64 is decoded as
okio does (no padding, URL-safe alphabet, whitespace, trailing ``=`` all accepted); a digest of
the wrong length (even empty) is accepted and never matches.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass

from pinscan.errors import PolicyError
from pinscan.policy._source_code import Source, Token, closing_bracket, is_token, tokenize
from pinscan.policy.model import (
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Rule,
    Suggestion,
)

NOTE = (
    "OkHttp verdicts assume OkHttp 4.3 or later: in 3.x a '**.' pattern is taken as a literal "
    "host and never matches (its hosts are unpinned), and patterns such as 'host:443' or "
    "'*.*.x' are accepted instead of throwing"
)
_DIGEST_SIZES = {"sha256": 32, "sha1": 20}
_INVALID_HOST_CHARS = frozenset(" #%/:?@[\\]")
_SNIFF = re.compile(rb"CertificatePinner\s{0,20}\.\s{0,20}Builder\b")


def sniff(data: bytes) -> bool:
    """Whether the text builds a ``CertificatePinner.Builder`` (source code)."""
    return _SNIFF.search(data[:4_000_000]) is not None


@dataclass(frozen=True)
class _Add:
    builder: int
    line: int
    args: tuple[tuple[int, int], ...]
    """Token index ranges of the arguments."""


def _calls(toks: list[Token]) -> tuple[list[_Add], int]:
    """Every ``add(...)`` on a ``CertificatePinner.Builder``, and how many builders there are."""
    adds: list[_Add] = []
    seen: set[int] = set()
    builders = 0

    def at(k: int) -> Token | None:
        return toks[k] if 0 <= k < len(toks) else None

    def record(j: int, builder: int) -> None:
        # toks[j] is the "(" of add(
        if j in seen:
            return
        seen.add(j)
        close = closing_bracket(toks, j)
        args: list[tuple[int, int]] = []
        start, depth = j + 1, 0
        for k in range(j + 1, close):
            tok = toks[k]
            if tok.kind == "op" and tok.value in "([{":
                depth += 1
            elif tok.kind == "op" and tok.value in ")]}":
                depth -= 1
            elif depth == 0 and is_token(tok, "op", ","):
                args.append((start, k))
                start = k + 1
        if start < close:
            args.append((start, close))
        adds.append(_Add(builder, toks[j - 1].line, tuple(args)))

    def chain(j: int, builder: int) -> None:
        """Follow ``.method(...)`` calls from token ``j`` (just after a receiver)."""
        while j < len(toks):
            if is_token(at(j), "op", "?") or is_token(at(j), "op", "!"):
                j += 1
                continue
            if not (
                is_token(at(j), "op", ".") and at(j + 1) is not None and at(j + 1).kind == "id"
            ):
                return
            method = toks[j + 1].value
            if is_token(at(j + 2), "op", "("):
                if method == "add":
                    record(j + 2, builder)
                j = closing_bracket(toks, j + 2) + 1
            elif method in ("apply", "also", "run") and is_token(at(j + 2), "op", "{"):
                close = closing_bracket(toks, j + 2)
                for k in range(j + 3, close):
                    if (
                        is_token(at(k), "id", "add")
                        and is_token(at(k + 1), "op", "(")
                        and (
                            not is_token(at(k - 1), "op", ".")
                            or is_token(at(k - 2), "id", "this")
                            or is_token(at(k - 2), "id", "it")
                        )
                    ):
                        record(k + 1, builder)
                j = close + 1
            else:
                return

    for i, tok in enumerate(toks):
        if not (
            is_token(tok, "id", "CertificatePinner")
            and is_token(at(i + 1), "op", ".")
            and is_token(at(i + 2), "id", "Builder")
            and is_token(at(i + 3), "op", "(")
            and is_token(at(i + 4), "op", ")")
        ):
            continue
        builder = builders
        builders += 1
        chain(i + 5, builder)
        # `b = [new] CertificatePinner.Builder()`: follow `b.add(...)` too.
        k = i - 1 if not is_token(at(i - 1), "id", "new") else i - 2
        if is_token(at(k), "op", "=") and at(k - 1) is not None and at(k - 1).kind == "id":
            name = toks[k - 1].value
            for m in range(i + 5, len(toks)):
                if is_token(toks[m], "id", name) and is_token(at(m + 1), "op", "."):
                    chain(m + 1, builder)
    adds.sort(key=lambda add: (add.line, add.args))
    return adds, builders


def _canonical_pattern(pattern: str) -> str | None:
    """OkHttp's ``toCanonicalHost`` on a pattern: lowercase A-labels, or None when invalid."""
    if ":" in pattern:
        try:
            address = ipaddress.IPv6Address(pattern.strip("[]"))
        except ValueError:
            return None
        return address.compressed
    try:
        host = pattern.encode("idna").decode("ascii") if not pattern.isascii() else pattern
    except UnicodeError:
        return None
    host = host.lower()
    if not host or any(ord(c) <= 0x1F or ord(c) >= 0x7F or c in _INVALID_HOST_CHARS for c in host):
        return None
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]
    if len(host) > 253 or any(not label or len(label) > 63 for label in labels):
        return None
    return host


def _check_pattern(pattern: str) -> str:
    """The canonical pattern, or ValueError with OkHttp's message."""
    if not (
        (pattern.startswith("*.") and "*" not in pattern[1:])
        or (pattern.startswith("**.") and "*" not in pattern[2:])
        or "*" not in pattern
    ):
        raise ValueError(f"Unexpected pattern: {pattern}")
    canonical = _canonical_pattern(pattern)
    if canonical is None:
        raise ValueError(f"Invalid pattern: {pattern}")
    return canonical


def _meant_pattern(pattern: str) -> str | None:
    """The pattern a rejected one most likely means (``https://`` and ``:443`` dropped, spaces
    trimmed), canonical, or None: only to say which hosts the failing client would serve."""
    meant = re.sub(r"^[a-z][a-z0-9+.-]*://", "", pattern.strip(), flags=re.IGNORECASE)
    meant = re.split(r"[/?#]", meant, maxsplit=1)[0]
    meant = re.sub(r":[0-9]*$", "", meant).strip()
    try:
        return _check_pattern(meant)
    except ValueError:
        return None


def _okio_digest(value: str) -> str:
    """okio ``decodeBase64``: canonical base64 of the bytes, '' when empty; ValueError if null."""
    body = value.rstrip("= \n\r\t")
    if any(c not in " \n\r\t" and not (c.isascii() and (c.isalnum() or c in "+/-_")) for c in body):
        raise ValueError("not base64")
    if not "".join(body.split()):
        return ""
    return Pin.parse("", body, lenient=True).digest


def _check_pin(text: str, location: Location) -> Pin:
    """A pin as ``CertificatePinner.Pin`` reads it, or ValueError with OkHttp's message."""
    for algorithm in ("sha1", "sha256"):
        prefix = f"{algorithm}/"
        if text.startswith(prefix):
            try:
                digest = _okio_digest(text[len(prefix) :])
            except ValueError:
                raise ValueError(f"Invalid pin hash: {text}") from None
            return Pin(algorithm, digest, text, location)
    raise ValueError(f"pins must start with 'sha256/' or 'sha1/': {text}")


def parse(data: bytes, source: str) -> Policy:
    """Read every ``CertificatePinner`` pin of a Kotlin or Java source file."""
    text = data.decode("utf-8", errors="replace")
    kotlin = source.endswith((".kt", ".kts")) or (
        not source.endswith(".java") and re.search(r"\b(fun|val)\s", text) is not None
    )
    src = Source(tokenize(text, kotlin))
    try:
        return _policy(src, source)
    except RecursionError:
        raise PolicyError(source, "constants nested too deeply to resolve") from None


def _policy(src: Source, source: str) -> Policy:
    """The policy of a tokenised source file."""
    adds, builders = _calls(src.tokens)
    warnings: list[Diagnostic] = []
    error: str | None = None
    error_location: Location | None = None
    grouped: dict[tuple[str, Match], tuple[str, Location, list[Pin]]] = {}

    def warn(line: int, message: str) -> None:
        warnings.append(Diagnostic(Location(source, line), message))

    if builders > 1:
        warn(
            adds[0].line if adds else 1,
            f"{builders} CertificatePinner builders in this file: their pins are read as one "
            "pinner, though a client uses only the one it builds",
        )
    for add in adds:
        if not add.args:
            continue
        (p_start, p_end), *pin_args = add.args
        pattern, end = src.expression(p_start, p_end)
        if end != p_end:
            pattern = None
        pins: list[Pin] = []
        threw = False
        for start, stop in pin_args:
            line = src.tokens[start].line if start < stop else add.line
            if is_token(src.tokens[start], "op", "*"):
                warn(line, "add(): a spread array of pins cannot be read: left out")
                continue
            value, end = src.expression(start, stop)
            if value is None or end != stop:
                if pattern is not None:
                    warn(line, "add(): a pin that is not a literal or a constant of this file")
                continue
            try:
                if pattern is not None:
                    _check_pattern(pattern)
                pins.append(_check_pin(value, Location(source, line)))
            except ValueError as exc:
                threw = True
                if error is None:
                    error = (
                        f"CertificatePinner.Builder.add() throws IllegalArgumentException: {exc}"
                    )
                    error_location = Location(source, line)
        if pattern is None:
            warn(
                add.line,
                "add(): a host pattern that is not a literal or a constant of this file: "
                "these pins are left out",
            )
            continue
        if not pins and not threw:
            continue
        try:
            canonical = _check_pattern(pattern)
        except ValueError:
            # Already the policy error. The hosts it meant still get a rule, so that they are
            # judged `error` (the client is never built) rather than `unpinned`.
            canonical = _meant_pattern(pattern)
            if canonical is None:
                warn(
                    add.line,
                    f"pattern {pattern!r} names no host pinscan can tell: requests to it fail "
                    "too, but no endpoint is judged by it",
                )
                continue
        if canonical.endswith("."):
            warn(add.line, f"pattern {pattern!r} ends with a dot: OkHttp never matches it")
            continue
        if canonical.startswith("**."):
            host, match = canonical[3:], Match.SUBDOMAINS
        elif canonical.startswith("*."):
            host, match = canonical[2:], Match.ONE_LABEL
        else:
            host, match = canonical, Match.EXACT
        for pin in pins:
            size = len(base64.b64decode(pin.digest)) if pin.digest else 0
            if size != _DIGEST_SIZES[pin.algorithm]:
                where = pin.location.line if pin.location else add.line
                warn(
                    where,
                    f"{pin.text}: a {size}-byte digest, not a {pin.algorithm} one: "
                    "OkHttp accepts it and it never matches",
                )
        _, _, merged = grouped.setdefault(
            (host, match), (canonical, Location(source, add.line), [])
        )
        for pin in pins:
            if all((q.algorithm, q.digest) != (pin.algorithm, pin.digest) for q in merged):
                merged.append(pin)
    rules = tuple(
        Rule(host, match, (PinSet(tuple(pins)),), location, pattern=pattern)
        for (host, match), (pattern, location, pins) in grouped.items()
    )
    return Policy(
        name=source,
        format="okhttp",
        rules=rules,
        combine=Combine.UNION,
        error=error,
        error_location=error_location,
        warnings=tuple(warnings),
        notes=(NOTE,),
    )


def _comment(text: str) -> str:
    return " ".join(text.split())


def write(suggestion: Suggestion) -> str:
    """A Kotlin snippet building the suggested ``CertificatePinner``, with comments."""
    pattern = f"**.{suggestion.domain}" if suggestion.include_subdomains else suggestion.domain
    lines = [f"// {_comment(line)}" for line in suggestion.header]
    lines.append(
        "// OkHttp CertificatePinner: a pin matching any certificate of the verified chain passes."
    )
    if suggestion.include_subdomains:
        lines.append(
            f"// '**.' covers {suggestion.domain} and every name below it (OkHttp >= 4.3)."
        )
    if suggestion.expires is not None:
        lines.append(
            f"// OkHttp pins never expire: replace this pin-set before {suggestion.expires} "
            "(UTC), or the app stops connecting when these keys rotate."
        )
    if not suggestion.enforce:
        lines.append("// OkHttp has no report-only mode: these pins are enforced.")
    lines += [
        "import okhttp3.CertificatePinner",
        "",
        "val certificatePinner: CertificatePinner = CertificatePinner.Builder()",
        "    .add(",
        f'        "{pattern}",',
    ]
    for suggested in suggestion.pins:
        lines.append(f"        // {suggested.role}: {_comment(suggested.comment)}")
        lines.append(f'        "{suggested.pin.algorithm}/{suggested.pin.digest}",')
    lines += ["    )", "    .build()", ""]
    return "\n".join(lines)
