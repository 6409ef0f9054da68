# SPDX-License-Identifier: Apache-2.0
"""Node.js ``checkServerIdentity`` callbacks that pin, read out of JavaScript or TypeScript.

Node calls ``checkServerIdentity(hostname, cert)`` after the chain has verified against its
store (``tls.connect``, ``https.Agent``, ``https.request`` options); returning an ``Error``
refuses the connection. A pinning callback compares ``cert.fingerprint256`` (the SHA-256 of the
certificate, colon-separated hex), ``sha256(cert.pubkey)`` or an SPKI pin with values it holds.
This reader finds the callbacks (a function or arrow function given as ``checkServerIdentity``,
or the name of one defined in the file) and reads, as :mod:`.okhttp` reads Kotlin, only what is
knowable without running the code: the literals in the callback and the file's constants it
names (strings, arrays and objects of them). A pin the code builds at run time (an environment
variable, a file, a parameter) is a warning, not a guess.

Positions: a callback that walks ``cert.issuerCertificate`` checks the whole chain Node built;
one that does not checks the leaf only. Hosts: ``host``/``hostname``/``servername`` of the
options object that holds the callback, names the callback compares its ``hostname`` argument
with, the host keys of a constant object of pins, and the hosts given beside the file
(``--host``). ``sha256(cert.pubkey)`` is the SPKI pin for RSA keys; for an EC key ``pubkey`` is
the bare point, and the ``node_pubkey`` finding says such a pin never matches.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from pinscan.errors import PolicyError
from pinscan.policy._source_code import Source, Token, closing_bracket, is_token, tokenize
from pinscan.policy.model import (
    CERT_SHA256,
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
    normalize_host,
)

NOTE = (
    "Node.js checkServerIdentity runs after the chain verified against Node's store (Mozilla's "
    "roots): a callback that walks cert.issuerCertificate checks the verified chain, one that "
    "does not checks the leaf; cert.fingerprint256 pins the certificate, so a renewal with "
    "the same key breaks it"
)
_SNIFF = re.compile(rb"checkServerIdentity")
_CHECKED = re.compile(rb"fingerprint256|fingerprint\b|pubkey|sha256/")
_COLON_HEX = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+")
_HEX = re.compile(r"[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{43}=")
_HOST = re.compile(r"(?=.{1,253}$)(\*\.)?([a-z0-9_-]{1,63}\.)+[a-z][a-z0-9-]{0,62}\.?", re.I)
_HOST_KEYS = ("host", "hostname", "servername")
_FROM_CERT = frozenset(
    ("cert", "fingerprint256", "fingerprint", "pubkey", "issuerCertificate", "raw", "digest")
)
_KEYWORDS = frozenset(
    (
        *("if", "else", "return", "while", "do", "for", "const", "let", "var", "new"),
        *("typeof", "undefined", "null", "true", "false", "this", "cert", "err", "error"),
        *("throw", "await", "async", "function"),
    )
)


def sniff(data: bytes) -> bool:
    """Whether the text gives a ``checkServerIdentity`` callback that looks at the key or
    certificate hashes."""
    head = data[:4_000_000]
    return _SNIFF.search(head) is not None and _CHECKED.search(head) is not None


def _declarations(toks: list[Token]) -> dict[str, list[int]]:
    """Where each name is declared (``const``/``let``/``var``/``function NAME``): token
    indexes, so that a name is looked up once, not by a walk over the file."""
    declared: dict[str, list[int]] = {}
    for k in range(1, len(toks)):
        if toks[k].kind == "id" and toks[k - 1].value in ("const", "let", "var", "function"):
            declared.setdefault(toks[k].value, []).append(k)
    return declared


def _callback(
    toks: list[Token], i: int, declared: dict[str, list[int]], depth: int = 0
) -> tuple[int, int, str | None] | None:
    """The token range of the body of the function given at token ``i`` (a function
    expression, an arrow function, or the name of a function of this file), and the name of its
    first parameter."""
    tok = toks[i] if i < len(toks) else None
    if tok is not None and tok.kind == "id" and tok.value not in ("function", "async"):
        # A name: `function NAME(`, or `const NAME = function (` / `(...) =>`.
        if depth > 3:
            return None  # `const a = b; const b = a;`
        for k in declared.get(tok.value, ()):
            if k + 2 >= len(toks):
                continue
            if is_token(toks[k - 1], "id", "function") and is_token(toks[k + 1], "op", "("):
                return _callback(toks, k - 1, declared, depth + 1)
            if is_token(toks[k + 1], "op", "=") and not is_token(toks[k + 2], "op", "="):
                return _callback(toks, k + 2, declared, depth + 1)
        return None
    if is_token(tok, "id", "async"):
        i += 1
    if is_token(toks[i] if i < len(toks) else None, "id", "function"):
        i += 1
        if i < len(toks) and toks[i].kind == "id":
            i += 1  # a named function expression
    if i >= len(toks):
        return None
    param = None
    if toks[i].kind == "id" and i + 2 < len(toks) and is_token(toks[i + 1], "op", "="):
        param, close = toks[i].value, i  # `host => ...`
    elif is_token(toks[i], "op", "("):
        close = closing_bracket(toks, i)
        if i + 1 < close and toks[i + 1].kind == "id":
            param = toks[i + 1].value
    else:
        return None
    # After the parameters: a TypeScript return type, then `{` or `=> {` or `=> expression`.
    j = close + 1
    while j < len(toks) and not is_token(toks[j], "op", "{"):
        if (
            is_token(toks[j], "op", "=")
            and j + 2 < len(toks)
            and is_token(toks[j + 1], "op", ">")
            and not is_token(toks[j + 2], "op", "{")
        ):
            return j + 2, _expression_end(toks, j + 2), param
        if j - close > 40 or is_token(toks[j], "op", ";"):
            return None
        j += 1
    if j >= len(toks):
        return None
    return j + 1, closing_bracket(toks, j), param


def _expression_end(toks: list[Token], start: int) -> int:
    """Where an arrow function's expression body ends: the ``,``, ``;`` or closing bracket
    outside any bracket of its own."""
    depth, end = 0, start
    while end < len(toks):
        t = toks[end]
        if t.kind == "op" and t.value in "([{":
            depth += 1
        elif t.kind == "op" and t.value in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and t.kind == "op" and t.value in ",;":
            break
        end += 1
    return end


def _options_hosts(toks: list[Token], i: int, src: Source) -> list[str]:
    """``host``/``hostname``/``servername`` string values of the object literal holding the
    callback key at token ``i``."""
    depth, start = 0, None
    for k in range(i - 1, -1, -1):
        t = toks[k]
        if t.kind == "op" and t.value in ")]}":
            depth += 1
        elif t.kind == "op" and t.value in "([{":
            if depth == 0:
                start = k if t.value == "{" else None
                break
            depth -= 1
    if start is None:
        return []
    end = closing_bracket(toks, start)
    hosts = []
    for k in range(start + 1, end - 2):
        if (
            toks[k].kind in ("id", "str")
            and toks[k].value in _HOST_KEYS
            and is_token(toks[k + 1], "op", ":")
        ):
            value, _ = src.expression(k + 2, end)
            if value:
                hosts.append(value)
    return hosts


def _literal_values(toks: list[Token], start: int, end: int, src: Source) -> list[tuple[str, int]]:
    """Each string of an array or object literal (keys excluded), with its line."""
    values = []
    for k in range(start, end):
        t = toks[k]
        if t.kind == "str" and not is_token(toks[k + 1] if k + 1 < end else None, "op", ":"):
            value, _ = src.expression(k, end)
            if value is not None:
                values.append((value, t.line))
    return values


class _Reader:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.toks = tokenize(text, kotlin=False, javascript=True)
        self.src = Source(self.toks)
        self.declared = _declarations(self.toks)
        self.warnings: list[Diagnostic] = []
        # host -> (algorithm, position) -> pins: each list must match (a callback checks the
        # certificate's fingerprint and its key hash one after the other); None: the pins
        # whose hosts the file does not say.
        self.found: dict[str | None, dict[tuple[str, Position], list[Pin]]] = {}

    def warn(self, line: int | None, message: str) -> None:
        self.warnings.append(Diagnostic(Location(self.source, line), message))

    def _constant_literal(self, name: str) -> tuple[int, int] | None:
        """The token range of ``const NAME = [ ... ]`` or ``{ ... }``, when there is one."""
        toks = self.toks
        for k in self.declared.get(name, ()):
            if toks[k - 1].value == "function" or k + 2 >= len(toks):
                continue
            j = k + 1
            if is_token(toks[j], "op", ":"):  # a TypeScript type: up to its `=`
                while j < min(len(toks) - 1, k + 40) and not (
                    is_token(toks[j], "op", "=") and toks[j + 1].value not in "=>"
                ):
                    j += 1
            if not is_token(toks[j], "op", "="):
                continue
            j += 1
            while j < len(toks) and not (toks[j].kind == "op" and toks[j].value in "[{;"):
                j += 1  # `new Set([` and TypeScript `as const` cases
            if j < len(toks) and toks[j].value in "[{":
                return j, closing_bracket(toks, j)
        return None

    def classify(self, value: str, line: int, body: str) -> Pin | None:
        """The pin a string is, or None; a warning for a digest pinscan cannot judge."""
        where = Location(self.source, line)
        text = value.strip()
        if text.startswith(("sha256/", "sha1/")):
            algorithm, _, digest = text.partition("/")
            try:
                return Pin.parse(algorithm, digest, location=where, text=text)
            except ValueError:
                self.warn(line, f"{text!r}: not base64: it never matches")
                return None
        if _BASE64.fullmatch(text):
            return Pin.parse("sha256", text, location=where)
        hex_digits = None
        if _COLON_HEX.fullmatch(text):
            hex_digits = text.replace(":", "")
            kind = "cert"
        elif _HEX.fullmatch(text):
            hex_digits = text
            uses_cert, uses_key = "fingerprint" in body, "pubkey" in body
            if uses_cert == uses_key:
                self.warn(line, f"{text[:16]}...: a hex digest of the certificate or of its "
                          "key: the callback does not say which; left out")  # fmt: skip
                return None
            kind = "cert" if uses_cert else "key"
        if hex_digits is None:
            return None
        raw = binascii.unhexlify(hex_digits)
        digest = base64.b64encode(raw).decode()
        if len(raw) == 20:
            self.warn(line, f"{text[:20]}...: a SHA-1 fingerprint (cert.fingerprint): pinscan "
                      "judges SHA-256 ones; left out")  # fmt: skip
            return None
        if len(raw) != 32:
            return None
        if kind == "cert":
            return Pin(CERT_SHA256, digest, text, where)
        return Pin("sha256", digest, text, where)

    def read(self) -> None:
        toks = self.toks
        for i, tok in enumerate(toks):
            if (
                not is_token(tok, "id", "checkServerIdentity")
                or is_token(toks[i - 1] if i else None, "op", ".")
                or i + 2 >= len(toks)
            ):
                continue
            if is_token(toks[i + 1], "op", "("):
                # A method (`checkServerIdentity(host, cert) {`), not a call.
                after = toks[closing_bracket(toks, i + 1) + 1 :][:1]
                if not (after and after[0].kind == "op" and after[0].value in "{:"):
                    continue
                found = _callback(toks, i + 1, self.declared)
            elif is_token(toks[i + 1], "op", ":") or (
                is_token(toks[i + 1], "op", "=") and not is_token(toks[i + 2], "op", "=")
            ):
                found = _callback(toks, i + 2, self.declared)
            else:
                continue
            if found is None:
                self.warn(tok.line, "checkServerIdentity: a callback pinscan cannot find: not read")
                continue
            self._callback(i, *found)

    def _callback(self, key: int, start: int, end: int, param: str | None) -> None:
        toks, line = self.toks, self.toks[key].line
        body = " ".join(t.value for t in toks[start:end] if t.kind == "id")
        walks = self._walking_loops(start, end)
        if "checkServerIdentity" not in body:
            self.warn(line, "the callback does not call tls.checkServerIdentity: the host "
                      "name is not checked against the certificate")  # fmt: skip
        hosts = [h for h in _options_hosts(toks, key, self.src) if _HOST.fullmatch(h)]
        pins: list[tuple[Pin, Position]] = []
        by_host: dict[str, list[tuple[Pin, Position]]] = {}
        # Names the callback computes from the certificate (`last = cert.fingerprint256`):
        # compared with a fingerprint, they are no pins.
        seen = {
            toks[m].value
            for m in range(start, end - 2)
            if toks[m].kind == "id"
            and is_token(toks[m + 1], "op", "=")
            and not is_token(toks[m + 2], "op", "=")
            and any(x.value in _FROM_CERT for x in toks[m + 2 : m + 10])
        }
        # ... and the collections it fills (`seen.add(cert.fingerprint256)`).
        seen |= {
            toks[m].value
            for m in range(start, end - 3)
            if toks[m].kind == "id"
            and is_token(toks[m + 1], "op", ".")
            and toks[m + 2].value in ("add", "push", "set")
            and is_token(toks[m + 3], "op", "(")
        }

        def where(k: int) -> Position:
            return Position.ANY if any(a <= k < b for a, b in walks) else Position.LEAF

        for k in range(start, end):
            t = toks[k]
            if t.kind == "str":
                value, _ = self.src.expression(k, end)
                if value is None:
                    continue
                if param and _HOST.fullmatch(value) and self._compared_with(k, param):
                    hosts.append(value)
                elif (pin := self.classify(value, t.line, body)) is not None:
                    pins.append((pin, where(k)))
            elif t.kind == "id" and t.value not in seen and not is_token(toks[k - 1], "op", "."):
                value = self.src.constant(t.value)
                if value is not None:
                    seen.add(t.value)
                    if (pin := self.classify(value, t.line, body)) is not None:
                        pins.append((pin, where(k)))
                elif (span := self._constant_literal(t.value)) is not None:
                    seen.add(t.value)
                    found_pins: list[Pin] = []
                    found_hosts: dict[str, list[Pin]] = {}
                    self._literal(*span, body, found_pins, found_hosts)
                    pins += [(p, where(k)) for p in found_pins]
                    for host, host_pins in found_hosts.items():
                        by_host.setdefault(host, []).extend((p, where(k)) for p in host_pins)
                elif (compared := self._compared_unknown(k)) is not None:
                    self.warn(t.line, f"{compared}: a pin built at run time, not a constant of "
                              "this file: not read")  # fmt: skip
        if not pins and not by_host:
            self.warn(line, "checkServerIdentity: no pin this reader can resolve")
            return
        for host in hosts or ([None] if pins else []):
            self._add(host, pins)
        for host, host_pins in by_host.items():
            self._add(host, host_pins)

    def _add(self, host: str | None, pins: list[tuple[Pin, Position]]) -> None:
        sets = self.found.setdefault(host, {})
        for pin, position in pins:
            sets.setdefault((pin.algorithm, position), []).append(pin)

    def _walking_loops(self, start: int, end: int) -> list[tuple[int, int]]:
        """Token ranges of the loops of a callback that walk ``cert.issuerCertificate``: the
        comparisons inside them see every certificate of the chain."""
        toks, loops = self.toks, []
        for k in range(start, end):
            t = toks[k]
            if t.kind != "id" or t.value not in ("do", "while", "for"):
                continue
            j = k + 1
            if t.value != "do" and j < end and is_token(toks[j], "op", "("):
                j = closing_bracket(toks, j) + 1
            if j < end and is_token(toks[j], "op", "{"):
                stop = closing_bracket(toks, j) + 1
                if t.value == "do" and is_token(toks[stop] if stop < end else None, "id", "while"):
                    stop = closing_bracket(toks, stop + 1) + 1
                if any(is_token(x, "id", "issuerCertificate") for x in toks[k:stop]):
                    loops.append((k, stop))
        return loops

    def _literal(
        self, start: int, end: int, body: str, pins: list[Pin], by_host: dict[str, list[Pin]]
    ) -> None:
        """The pins of a constant array, or of an object keyed by host names."""
        toks = self.toks
        if toks[start].value == "[":
            for value, line in _literal_values(toks, start + 1, end, self.src):
                if (pin := self.classify(value, line, body)) is not None:
                    pins.append(pin)
            return
        k = start + 1
        while k < end:
            t = toks[k]
            if t.kind in ("str", "id") and is_token(toks[k + 1], "op", ":"):
                stop = k + 2
                if stop < end and toks[stop].value in "[{":
                    stop = closing_bracket(toks, stop) + 1
                else:
                    while stop < end and not is_token(toks[stop], "op", ","):
                        stop += 1
                values = _literal_values(toks, k + 2, stop, self.src)
                found = [p for v, line in values if (p := self.classify(v, line, body))]
                if _HOST.fullmatch(t.value):
                    by_host.setdefault(normalize_host(t.value), []).extend(found)
                else:
                    pins.extend(found)
                k = stop
            else:
                k += 1

    def _compared_with(self, k: int, name: str) -> bool:
        """Whether the string at token ``k`` is compared (``==``/``===``) with ``name``."""
        toks = self.toks
        j = k - 1
        while j > k - 4 and toks[j].kind == "op" and toks[j].value in "=!":
            j -= 1
        if j < k - 2 and is_token(toks[j], "id", name):
            return True
        j = k + 1
        while j < min(len(toks), k + 4) and toks[j].kind == "op" and toks[j].value in "=!":
            j += 1
        return j > k + 2 and j < len(toks) and is_token(toks[j], "id", name)

    def _compared_unknown(self, k: int) -> str | None:
        """The dotted name at token ``k`` when it is what a fingerprint or key hash is compared
        with (``===``, ``!==``, ``.includes(``, ``.indexOf(``, ``.has(``), else None."""
        toks = self.toks
        j = k + 1
        while j + 1 < len(toks) and is_token(toks[j], "op", ".") and toks[j + 1].kind == "id":
            j += 2
        name = "".join(t.value for t in toks[k:j])
        if toks[k].value in _KEYWORDS:
            return None

        def hashes(lo: int, hi: int) -> bool:
            return any(
                t.kind == "id" and t.value in ("fingerprint256", "fingerprint", "pubkey")
                for t in toks[max(0, lo) : hi]
            )

        if k and is_token(toks[k - 1], "op", "=") and hashes(k - 8, k):
            return name
        if j + 1 < len(toks) and toks[j].value in "=!" and is_token(toks[j + 1], "op", "="):
            return name if hashes(j, j + 10) else None
        if (
            toks[j - 1].value in ("includes", "indexOf", "has")
            and j < len(toks)
            and is_token(toks[j], "op", "(")
            and hashes(j, closing_bracket(toks, j))
        ):
            return "".join(t.value for t in toks[k : j - 2])
        return None


def parse(data: bytes, source: str, hosts: Iterable[str] = ()) -> Policy:
    """Every pinning ``checkServerIdentity`` callback of a JavaScript or TypeScript file;
    :class:`PolicyError` only for constants nested past Python's recursion limit."""
    reader = _Reader(source, data.decode("utf-8", errors="replace"))
    try:
        reader.read()
    except RecursionError:
        raise PolicyError(source, "constants nested too deeply to resolve") from None
    given = [normalize_host(h) for h in hosts if normalize_host(h)]
    found = dict(reader.found)
    if None in found:
        unnamed = found.pop(None)
        if not given:
            first = next(iter(unnamed.values()))[0].location
            reader.warn(
                first.line if first else None,
                "pins whose hosts this file does not name: say which hosts use them "
                "(--host, hosts=)",
            )
        for host in given:
            sets = found.setdefault(host, {})
            for key, pins in unnamed.items():
                sets.setdefault(key, []).extend(pins)
    rules = []
    for host, sets in sorted(found.items()):
        name = normalize_host(host)
        pin_sets = tuple(
            PinSet(tuple({(p.algorithm, p.digest): p for p in pins}.values()), position)
            for (_, position), pins in sorted(sets.items())
        )
        where = pin_sets[0].pins[0].location or Location(source)
        match = Match.ONE_LABEL if name.startswith("*.") else Match.EXACT
        rules.append(Rule(name.removeprefix("*."), match, pin_sets, where, pattern=host))
    return Policy(
        name=source,
        format="node",
        rules=tuple(rules),
        combine=Combine.MOST_SPECIFIC,
        warnings=tuple(reader.warnings),
        notes=(NOTE,),
    )
