# SPDX-License-Identifier: Apache-2.0
"""HPKP (RFC 7469) ``Public-Key-Pins`` and ``Public-Key-Pins-Report-Only`` headers.

A header carries no host: the host is whoever sent it. So the input is read as a dump of HTTP
responses, written the way people already save them:

- a ``Host: example.com`` line, a comment ``# host: example.com``, a line that starts with an
  ``https://example.com/...`` URL, or a ``curl ... https://example.com/`` command line sets the
  host of the headers that follow (curl ``-v`` prefixes ``<``/``>`` are ignored);
- header lines may be folded (continuation lines start with white space), as in RFC 7469's
  example;
- a header seen before any host is **skipped with a warning** (it is not an error: the file is
  fine, pinscan just cannot know whom it pins). ``parse(..., host="example.com")`` gives such
  headers a host.

Each header is parsed as browsers did (Chromium's and Firefox's parsers): directive names are
case-insensitive; ``max-age`` is required (except in Report-Only) and must be a number;
``max-age``, ``includeSubDomains`` and ``report-uri`` may appear once; a ``pin-sha256`` value must
be base64 of 32 bytes; ``pin-<other>`` and unknown directives are ignored. A header a browser
would reject becomes a rule with :attr:`Rule.error`. ``max-age=0`` deletes the host's pins, so
it gives no rule (a warning says so). A later valid header for the same host and kind replaces
an earlier one, as a browser's noted state does; a rejected header changes nothing.

Rules: ``includeSubDomains`` covers every name below the host; the closest noted host applies
(most specific). ``max-age`` counts from when the browser last saw the header, so a rule has no
absolute expiry; and whether a browser notes the header at all (one pin in the chain, one backup
pin not in it) depends on the chain, which only the evaluator knows.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from urllib.parse import urlsplit

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
    normalize_host,
    utc_midnight,
)

NOTES = (
    "HPKP max-age counts from when a browser last saw the header: rules have no absolute "
    "expiry, verdicts assume the header was seen within max-age",
    "A browser notes an HPKP header only when one of its pins is in the validated chain and "
    "another is not (a backup pin, RFC 7469 section 2.5); HPKP is removed from Chrome 72 and "
    "off by default since Firefox 72",
)
_HEADER = re.compile(r"(?i)^[<>]?\s*(public-key-pins(?:-report-only)?)\s*:(.*)$")
_HOST_HEADER = re.compile(r"(?i)^[<>]?\s*host\s*:\s*(\S+)\s*$")
_HOST_COMMENT = re.compile(r"(?i)^#\s*host\s*:\s*(\S+)\s*$")
_URL_LINE = re.compile(r"(?i)^(?:[$>]\s*)?(?:curl\s[^\n]*?)?(https?://[^\s'\"]+)")
_STATUS = re.compile(r"^[<]?\s*HTTP/\d")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SNIFF = re.compile(rb"(?im)^[<>]?[ \t]*public-key-pins(?:-report-only)?[ \t]*:")
DEFAULT_MAX_AGE = 5_184_000  # 60 days, RFC 7469's example


def sniff(data: bytes) -> bool:
    """Whether a line is a ``Public-Key-Pins[-Report-Only]:`` header."""
    return _SNIFF.search(data[:4_000_000]) is not None


def _host_of(value: str) -> str | None:
    """The host of a ``Host:`` value or a URL (port, path and brackets removed)."""
    try:
        host = urlsplit(value if "://" in value else f"//{value}").hostname
    except ValueError:
        return None
    return normalize_host(host) if host else None


def _directives(value: str) -> list[tuple[str, str | None]] | str:
    """``(name, value)`` pairs of a header value, or the reason it does not parse."""
    out: list[tuple[str, str | None]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t;":
            i += 1
        if i >= n:
            break
        m = _TOKEN.match(value, i)
        if m is None:
            return f"not a directive at {value[i : i + 20]!r}"
        name, i = m.group().lower(), m.end()
        while i < n and value[i] in " \t":
            i += 1
        arg: str | None = None
        if i < n and value[i] == "=":
            i += 1
            while i < n and value[i] in " \t":
                i += 1
            if i < n and value[i] == '"':
                buf: list[str] = []
                i += 1
                while i < n and value[i] != '"':
                    if value[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(value[i])
                    i += 1
                if i >= n:
                    return f"unterminated quoted value of {name}"
                arg, i = "".join(buf), i + 1
            else:
                m = _TOKEN.match(value, i)
                if m is None:
                    return f"bad value of {name} at {value[i : i + 20]!r}"
                arg, i = m.group(), m.end()
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] != ";":
            return f"expected ';' after {name} at {value[i : i + 20]!r}"
        out.append((name, arg))
    return out


def _read_header(
    kind: str, value: str, host: str, location: Location
) -> tuple[Rule | None, str | None]:
    """The rule a header gives, or None and why (max-age=0 removes the pins)."""
    report_only = kind.lower().endswith("report-only")
    parsed = _directives(value)
    pins: list[Pin] = []
    max_age: int | None = None
    subdomains = False
    seen: set[str] = set()
    error: str | None = parsed if isinstance(parsed, str) else None
    for name, arg in [] if isinstance(parsed, str) else parsed:
        if name in ("max-age", "includesubdomains", "report-uri"):
            if name in seen:
                error = error or f"{name} appears twice"
            seen.add(name)
        if name == "max-age":
            if arg is None or not arg.isdigit():
                error = error or f"max-age={arg} is not a number of seconds"
            else:
                max_age = int(arg)
        elif name == "includesubdomains":
            subdomains = True
        elif name == "pin-sha256":
            pin = _pin(arg, location)
            if pin is None:
                error = error or f'pin-sha256="{arg}" is not base64 of a SHA-256 digest'
            else:
                pins.append(pin)
    if error is None and max_age is None and not report_only:
        error = "no max-age directive"
    if error is None and max_age == 0 and not report_only:
        return None, "max-age=0 deletes the pins noted for this host: it is not pinned"
    if error is None and not pins:
        error = "no pin-sha256 directive"
    rule = Rule(
        host=host,
        match=Match.SUBDOMAINS if subdomains else Match.EXACT,
        pin_sets=(PinSet(tuple(pins)),),
        location=location,
        enforce=not report_only,
        error=None if error is None else f"browsers reject this {kind} header: {error}",
        pattern=host,
    )
    return rule, None


def _pin(value: str | None, location: Location) -> Pin | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32:
        return None
    return Pin("sha256", base64.b64encode(raw).decode(), f'pin-sha256="{value}"', location)


def parse(data: bytes, source: str, *, host: str | None = None) -> Policy:
    """Read HPKP headers; ``host`` is the host of headers that come before any host line."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    current = normalize_host(host) if host else None
    warnings: list[Diagnostic] = []
    noted: dict[tuple[str, bool], Rule] = {}
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        number = i + 1
        i += 1
        header = _HEADER.match(line)
        if header is None:
            found = _HOST_HEADER.match(line) or _HOST_COMMENT.match(line) or _URL_LINE.match(line)
            if found:
                current = _host_of(found.group(1)) or current
            continue
        kind, value = header.group(1), header.group(2)
        while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i].strip():
            if _HEADER.match(lines[i].strip()):
                break
            value += " " + lines[i].strip()
            i += 1
        location = Location(source, number)
        if current is None:
            preview = _read_header(kind, value, "-", location)[0]
            why = f" ({preview.error})" if preview is not None and preview.error else ""
            warnings.append(
                Diagnostic(
                    location,
                    f"{kind} header with no host before it (a Host: line, '# host: NAME' or "
                    f"a URL line): skipped{why}",
                )
            )
            continue
        rule, removed = _read_header(kind, value, current, location)
        if rule is None:
            warnings.append(Diagnostic(location, f"{current}: {removed}"))
            noted.pop((current, True), None)
            continue
        key = (current, rule.enforce)
        earlier = noted.get(key)
        if earlier is not None and earlier.error is None and rule.error is not None:
            warnings.append(
                Diagnostic(
                    location,
                    f"{current}: this rejected {kind} header leaves the one of line "
                    f"{earlier.location.line} in force",
                )
            )
            continue
        if earlier is not None:
            warnings.append(
                Diagnostic(
                    location,
                    f"{current}: this {kind} header replaces the one of line "
                    f"{earlier.location.line}",
                )
            )
        noted[key] = rule
    return Policy(
        name=source,
        format="hpkp",
        rules=tuple(noted.values()),
        combine=Combine.MOST_SPECIFIC,
        warnings=tuple(warnings),
        notes=NOTES,
    )


def _max_age(expires: dt.date | None, now: dt.datetime | None = None) -> int:
    if expires is None:
        return DEFAULT_MAX_AGE
    moment = now or dt.datetime.now(dt.UTC)
    return max(1, int((utc_midnight(expires) - moment).total_seconds()))


def write(suggestion: Suggestion) -> str:
    """The suggested pins as one HPKP header line for the domain, with ``#`` comments."""
    kind = "Public-Key-Pins" if suggestion.enforce else "Public-Key-Pins-Report-Only"
    lines = [f"# {' '.join(line.split())}" for line in suggestion.header]
    lines.append(
        "# HPKP is removed from Chrome and off by default in Firefox: this header is for tools "
        "and old clients."
    )
    max_age = _max_age(suggestion.expires)
    if suggestion.expires is None:
        lines.append(f"# max-age={max_age}: 60 days from each response that carries the header.")
    else:
        lines.append(
            f"# max-age={max_age}: until {suggestion.expires} 00:00 UTC if served now; it counts "
            "from each response that carries the header."
        )
    for n, suggested in enumerate(suggestion.pins, 1):
        lines.append(f"# pin {n}, {suggested.role}: {' '.join(suggested.comment.split())}")
    directives = [f'pin-sha256="{s.pin.digest}"' for s in suggestion.pins]
    directives.append(f"max-age={max_age}")
    if suggestion.include_subdomains:
        directives.append("includeSubDomains")
    lines += [f"# host: {suggestion.domain}", f"{kind}: {'; '.join(directives)}", ""]
    return "\n".join(lines)
