# SPDX-License-Identifier: Apache-2.0
"""Java and Kotlin source read as far as it can be without compiling it: tokens (comments and
strings understood, so commented-out code never counts) and the values of string constants.

:class:`Source` evaluates only what is knowable without running the code: string literals, ``+``
concatenation, Kotlin ``$NAME``/``${NAME}`` templates and constants assigned once in the same
file (``private static final String PIN = "..."``, ``const val``/``val``/``var``). Anything else
(another file's constant, a function call) has no value. JavaScript and TypeScript are read
the same way (``'...'`` and template strings, ``const``/``let``). Used by :mod:`.okhttp` and
:mod:`.node`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class Token:
    kind: str  # "str", "id", "num", "op"
    value: str
    line: int
    parts: tuple[str | tuple[str], ...] = ()
    """For strings: literal text, and ``(name,)`` for a Kotlin template reference."""


def tokenize(text: str, kotlin: bool, *, javascript: bool = False) -> list[Token]:
    """Tokens of Java/Kotlin source without comments; linear, never raises. ``javascript``
    reads JavaScript/TypeScript strings too: single-quoted ones and template literals, whose
    ``${NAME}`` parts are references."""
    tokens: list[Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\ufeff":
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("*/", j):
                    depth -= 1
                    j += 2
                elif kotlin and text.startswith("/*", j):
                    depth += 1
                    j += 2
                else:
                    j += 1
            line += text.count("\n", i, j)
            i = j
        elif text.startswith('"""', i):
            end = text.find('"""', i + 3)
            end = n if end < 0 else end
            body = text[i + 3 : end]
            tokens.append(Token("str", body, line, _templates(body) if kotlin else (body,)))
            line += body.count("\n")
            i = end + 3
        elif javascript and c == "`":
            end = i + 1
            while end < n and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            body = text[i + 1 : end]
            tokens.append(Token("str", body, line, _templates(body, braces_only=True)))
            line += body.count("\n")
            i = end + 1
        elif c == '"' or (javascript and c == "'"):
            start_line = line
            parts: list[str | tuple[str]] = []
            buf: list[str] = []
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                ch = text[j]
                if ch == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    if esc == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[j + 2 : j + 6]):
                        buf.append(chr(int(text[j + 2 : j + 6], 16)))
                        j += 6
                        continue
                    buf.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b"}.get(esc, esc))
                    j += 2
                elif kotlin and ch == "$" and j + 1 < n and text[j + 1] == "{":
                    end = text.find("}", j + 2, min(n, j + 200))
                    if end < 0:
                        buf.append(ch)
                        j += 1
                        continue
                    parts.append("".join(buf))
                    buf = []
                    parts.append((text[j + 2 : end].strip(),))
                    j = end + 1
                elif (
                    kotlin
                    and ch == "$"
                    and j + 1 < n
                    and (text[j + 1].isalpha() or text[j + 1] == "_")
                ):
                    m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(text, j + 1)
                    assert m is not None
                    parts.append("".join(buf))
                    buf = []
                    parts.append((m.group(),))
                    j = m.end()
                else:
                    buf.append(ch)
                    j += 1
            parts.append("".join(buf))
            value = "".join(p for p in parts if isinstance(p, str))
            tokens.append(Token("str", value, start_line, tuple(parts)))
            i = j + 1
        elif c == "'":
            end = text.find("'", i + 1, min(n, i + 12))
            if end > i + 2 and text[end - 1] == "\\":  # '\''
                end = text.find("'", end + 1, min(n, i + 12))
            i = (i + 1) if end < 0 else end + 1
        elif c.isalpha() or c in "_$":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_$"):
                j += 1
            tokens.append(Token("id", text[i:j], line))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._"):
                j += 1
            tokens.append(Token("num", text[i:j], line))
            i = j
        else:
            tokens.append(Token("op", c, line))
            i += 1
    return tokens


_TEMPLATE = re.compile(r"\$\{([^}\n]{0,200})\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACES = re.compile(r"\$\{([^}\n]{0,200})\}()")


def _templates(body: str, *, braces_only: bool = False) -> tuple[str | tuple[str], ...]:
    """A raw Kotlin string (or a JavaScript template literal: ``${...}`` only) split into
    literal text and template references."""
    parts: list[str | tuple[str]] = []
    pos = 0
    pattern = _BRACES if braces_only else _TEMPLATE
    for m in pattern.finditer(body):
        parts.append(body[pos : m.start()])
        parts.append(((m.group(1) or m.group(2) or "").strip(),))
        pos = m.end()
    parts.append(body[pos:])
    return tuple(parts)


@dataclass
class Source:
    """The token stream plus the constants it defines, resolved lazily."""

    tokens: list[Token]
    definitions: dict[str, list[int]] = field(default_factory=dict)
    resolving: set[str] = field(default_factory=set)
    memo: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        toks = self.tokens
        for i, tok in enumerate(toks):
            if tok.kind != "id" or i + 1 >= len(toks):
                continue
            nxt = toks[i + 1]
            after = i + 2
            if nxt.kind == "op" and nxt.value == ":" and i + 3 < len(toks):
                nxt, after = toks[i + 3], i + 4  # Kotlin `val NAME: String =`
            if not (nxt.kind == "op" and nxt.value == "="):
                continue
            if after < len(toks) and toks[after].kind == "op" and toks[after].value == "=":
                continue  # `==`
            if i and toks[i - 1].value in ("val", "var", "String", "const", "let"):
                self.definitions.setdefault(tok.value, []).append(after)

    def constant(self, name: str) -> str | None:
        """The value of a constant of this file, or None when unknown or ambiguous."""
        starts = self.definitions.get(name)
        if not starts or name in self.resolving:
            return None
        if name not in self.memo:
            self.resolving.add(name)
            try:
                values = {self.expression(start)[0] for start in starts}
            finally:
                self.resolving.discard(name)
            self.memo[name] = values.pop() if len(values) == 1 else None
        return self.memo[name]

    def expression(self, i: int, end: int | None = None) -> tuple[str | None, int]:
        """Evaluate ``term ('+' term)*`` from token ``i``; the value is None if unresolvable."""
        toks = self.tokens
        stop = len(toks) if end is None else end
        pieces: list[str] = []
        ok = True
        while True:
            if i >= stop:
                return None, i
            tok = toks[i]
            if tok.kind == "str":
                for part in tok.parts:
                    if isinstance(part, str):
                        pieces.append(part)
                    else:
                        value = self._reference(part[0])
                        ok = ok and value is not None
                        pieces.append(value or "")
                i += 1
            elif tok.kind == "id":
                j = i + 1
                while (
                    j + 1 < stop
                    and toks[j].kind == "op"
                    and toks[j].value == "."
                    and toks[j + 1].kind == "id"
                ):
                    j += 2
                if j < stop and toks[j].kind == "op" and toks[j].value == "(":
                    return None, j  # a call: not knowable
                value = self.constant(toks[j - 1].value)
                ok = ok and value is not None
                pieces.append(value or "")
                i = j
            else:
                return None, i
            if i < stop and toks[i].kind == "op" and toks[i].value == "+":
                i += 1
                continue
            return ("".join(pieces) if ok else None), i

    def _reference(self, expr: str) -> str | None:
        if not _NAME.fullmatch(expr):
            return None
        return self.constant(expr.rsplit(".", 1)[-1])


def closing_bracket(toks: list[Token], i: int) -> int:
    """Index of the token closing the bracket at ``i`` (or len(toks) when unbalanced)."""
    depth = 0
    for j in range(i, len(toks)):
        tok = toks[j]
        if tok.kind == "op":
            if tok.value in "([{":
                depth += 1
            elif tok.value in ")]}":
                depth -= 1
                if depth == 0:
                    return j
    return len(toks)


def is_token(tok: Token | None, kind: str, value: str) -> bool:
    return tok is not None and tok.kind == kind and tok.value == value


__all__ = ["Source", "Token", "closing_bracket", "is_token", "tokenize"]
