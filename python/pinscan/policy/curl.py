# SPDX-License-Identifier: Apache-2.0
"""curl ``--pinnedpubkey`` / ``CURLOPT_PINNEDPUBLICKEY`` pins.

What is read, line by line:

- shell command lines ``curl ... --pinnedpubkey 'sha256//a;sha256//b' https://host/path``
  (also ``--pinnedpubkey=...``, backslash continuations, ``#`` comments, and curl's own
  test-suite ``<command>`` lines): the pins apply to the host of the command's URL, exactly;
- ``host sha256//a;sha256//b`` lines;
- C calls ``curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, "sha256//..." "...")`` (adjacent string
  literals joined, C comments ignored, as a compiler does) with the host of the nearest
  ``CURLOPT_URL`` before it (else the first one in the file).

A pin string without a host (``$URL``) is skipped with a warning.

Semantics (``lib/vtls/vtls.c``, ``Curl_pin_peer_pubkey``): only the leaf's key is checked, so
every rule is ``positions=LEAF`` and the policy's chain is the leaf. A value that starts with
``sha256//`` is split at ``;sha256//`` and each piece is compared **as text** with the standard
padded base64 of the leaf's SPKI SHA-256: a piece that is not exactly that form (unpadded,
short, hex) is kept as written and never matches (a warning says so). Any other value is a path
to a PEM or DER public-key file: a relative path next to the policy file is read (at most
1 MiB) and pinned; a file that holds no single ``PUBLIC KEY`` pins a key nothing matches, as curl
fails; a path pinscan cannot see (absolute, elsewhere, missing) is skipped with a warning.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

from pinscan.certs.keys import spki_der
from pinscan.certs.pem import is_pem, read_pem
from pinscan.errors import InputError
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
    Suggestion,
    normalize_host,
)

NOTE = "curl checks the leaf's public key only (--pinnedpubkey), whatever the chain"
_SNIFF = re.compile(rb"(?m)--pinnedpubkey|CURLOPT_PINNEDPUBLICKEY|^[ \t]*\S+[ \t]+sha256//")
_HOSTLIKE = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")
_MAX_KEY_FILE = 1 << 20


def sniff(data: bytes) -> bool:
    """Whether the text has a ``--pinnedpubkey`` option, a ``CURLOPT_PINNEDPUBLICKEY`` call or a
    ``host sha256//...`` line."""
    return _SNIFF.search(data[:4_000_000]) is not None


def _c_without_comments(text: str) -> str:
    """``text`` with C comments blanked (newlines kept, so offsets keep their line numbers)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _c_strings(text: str, i: int) -> tuple[str | None, int]:
    """Adjacent C string literals from ``i`` joined, or None when there is none."""
    parts: list[str] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n or text[i] != '"':
            break
        j = i + 1
        buf: list[str] = []
        while j < n and text[j] not in '"\n':
            if text[j] == "\\" and j + 1 < n:
                j += 1
            buf.append(text[j])
            j += 1
        parts.append("".join(buf))
        i = j + 1
    return ("".join(parts) if parts else None), i


def _c_calls(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, value, url)`` of every ``CURLOPT_PINNEDPUBLICKEY`` set in C code."""
    code = _c_without_comments(text)
    urls: list[tuple[int, str]] = []
    for m in re.finditer(r"\bCURLOPT_URL\s*,", code):
        value, _ = _c_strings(code, m.end())
        if value is not None:
            urls.append((m.start(), value))
    calls = []
    for m in re.finditer(r"\bCURLOPT_PINNEDPUBLICKEY\s*,", code):
        value, _ = _c_strings(code, m.end())
        if value is None:
            continue
        before = [url for pos, url in urls if pos < m.start()]
        url = before[-1] if before else (urls[0][1] if urls else None)
        calls.append((code.count("\n", 0, m.start()) + 1, value, url))
    return calls


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with shell backslash continuations joined, each with its first line number."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 1
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            first = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((first, " ".join(pending)))
        pending = []
    if pending:
        out.append((first, " ".join(pending)))
    return out


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _url_host(word: str) -> str | None:
    if "://" not in word:
        return None
    try:
        host = urlsplit(word).hostname
    except ValueError:
        return None
    return normalize_host(host) if host else None


def _shell(line: str) -> tuple[str, str | None] | None:
    """``(value, host)`` of a command line with ``--pinnedpubkey`` or a ``host sha256//`` line."""
    words = _words(line)
    value: str | None = None
    for k, word in enumerate(words):
        if word == "--pinnedpubkey" and k + 1 < len(words):
            value = words[k + 1]
        elif word.startswith("--pinnedpubkey="):
            value = word.split("=", 1)[1]
    if value is not None:
        hosts = [h for h in map(_url_host, words) if h]
        return value, (hosts[0] if hosts else None)
    if not line.strip().startswith(tuple(words[:1])):
        return None  # a quoted string (C code, prose): not a pin line
    if len(words) == 2 and words[1].startswith("sha256//"):
        host = _url_host(words[0]) or (
            normalize_host(words[0].strip("[]")) if _HOSTLIKE.fullmatch(words[0]) else None
        )
        return words[1], host
    if len(words) == 1 and words[0].startswith("sha256//"):
        return words[0], None
    return None


def _hash_pins(value: str, location: Location) -> tuple[list[Pin], list[str]]:
    """The pieces of a ``sha256//`` value, each a pin as curl compares it, and the warnings."""
    pins: list[Pin] = []
    problems: list[str] = []
    for piece in value[len("sha256//") :].split(";sha256//"):
        text = f"sha256//{piece}"
        try:
            canonical = len(base64.b64decode(piece, validate=True)) == 32 and (
                base64.b64encode(base64.b64decode(piece)).decode() == piece
            )
        except (binascii.Error, ValueError):
            canonical = False
        if not canonical:
            problems.append(
                f"{text!r}: not the padded base64 of a SHA-256 digest; curl compares the text "
                "as written, so it never matches"
            )
        pins.append(Pin("sha256", piece, text, location))
    return pins, problems


def _key_file(path: str, source: str, location: Location) -> tuple[Pin | None, str]:
    """The pin of a key file next to the policy, or None and why it is not read."""
    base = Path(source).parent
    if Path(path).is_absolute() or not Path(source).is_file():
        return None, f"key file {path!r} is not read (pinscan reads only files next to the policy)"
    try:
        target = (base / path).resolve()
        inside = target.is_relative_to(base.resolve())
        if not inside or not target.is_file() or target.stat().st_size > _MAX_KEY_FILE:
            return None, f"key file {path!r} is not a file next to the policy: not read"
        data = target.read_bytes()
    except OSError as exc:
        return None, f"key file {path!r} cannot be read: {exc.strerror or exc}"
    spki: bytes | None = None
    try:
        if is_pem(data):
            blocks = [b for b in read_pem(data, str(target)) if b.label == "PUBLIC KEY"]
            spki = blocks[0].der if len(blocks) == 1 else None
        elif spki_der(data) == data:
            spki = data
    except InputError:
        spki = None
    if spki is None:
        return Pin("sha256", "", f"file:{path}", location), (
            f"key file {path!r} holds no single PEM or DER public key: curl never matches"
        )
    digest = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return Pin("sha256", digest, f"file:{path}", location), ""


def parse(data: bytes, source: str) -> Policy:
    """Read every ``--pinnedpubkey`` and ``CURLOPT_PINNEDPUBLICKEY`` with its host."""
    text = data.decode("utf-8", errors="replace")
    found: list[tuple[int, str, str | None]] = []
    for number, line in _logical_lines(text):
        if "CURLOPT_" in line:
            continue
        shell = _shell(line)
        if shell is not None:
            found.append((number, *shell))
    found += [(line, value, _url_host(url or "")) for line, value, url in _c_calls(text)]
    found.sort(key=lambda item: item[0])
    rules: list[Rule] = []
    warnings: list[Diagnostic] = []
    for number, value, host in found:
        location = Location(source, number)
        if host is None:
            warnings.append(
                Diagnostic(location, f"pinned key {value!r} with no URL or host: skipped")
            )
            continue
        if value.startswith("sha256//"):
            pins, problems = _hash_pins(value, location)
        else:
            pin, problem = _key_file(value, source, location)
            pins, problems = ([pin] if pin else []), ([problem] if problem else [])
            if pin is None:
                warnings.append(Diagnostic(location, f"{host}: {problem}"))
                continue
        warnings += [Diagnostic(location, f"{host}: {problem}") for problem in problems]
        pin_set = PinSet(tuple(p for p in pins if p.digest), Position.LEAF)
        rules.append(Rule(host, Match.EXACT, (pin_set,), location, pattern=host))
    return Policy(
        name=source,
        format="curl",
        rules=tuple(rules),
        combine=Combine.MOST_SPECIFIC,
        chain=ChainSource.LEAF,
        warnings=tuple(warnings),
        notes=(NOTE,),
    )


def write(suggestion: Suggestion) -> str:
    """A shell snippet: the curl command that pins the suggested keys, with ``#`` comments."""
    lines = [f"# {' '.join(line.split())}" for line in suggestion.header]
    lines.append("# curl --pinnedpubkey checks the leaf's public key only: keep a backup leaf key.")
    if suggestion.include_subdomains:
        lines.append(f"# curl pins one URL's host: one command per name under {suggestion.domain}.")
    if suggestion.expires is not None:
        lines.append(f"# curl pins never expire: replace them before {suggestion.expires} (UTC).")
    for n, suggested in enumerate(suggestion.pins, 1):
        lines.append(f"# pin {n}, {suggested.role}: {' '.join(suggested.comment.split())}")
    pins = ";".join(f"sha256//{s.pin.digest}" for s in suggestion.pins)
    for name in suggestion.names or (suggestion.domain,):
        lines.append(f"curl --pinnedpubkey '{pins}' https://{name}/")
    lines.append("")
    return "\n".join(lines)
