# SPDX-License-Identifier: Apache-2.0
"""Loading the documents iOS pin policies live in: an app's Info.plist (XML or binary) or a JSON
dump of the same dictionary, with a line index for locations. Shared by :mod:`.ios` (ATS
``NSPinnedDomains``) and :mod:`.trustkit` (TrustKit iOS), as are the diagnostics collector and
the plist writers' header and comments.

``plistlib`` is safe against entity expansion: its expat handler rejects every entity
declaration (so no billion laughs) and expat never fetches external entities. Every other
failure of ``plistlib`` or ``json`` on hostile input becomes a :class:`PolicyError`.
"""

from __future__ import annotations

import json
import plistlib
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import unescape

from pinscan.errors import PolicyError
from pinscan.policy.model import Diagnostic, Location, comment_text

# ---------------------------------------------------------------------------------------------
# Loading: XML / binary plist or JSON, with a line index for locations.


@dataclass(frozen=True)
class Doc:
    root: Any
    kind: str
    """``xml``, ``binary`` or ``json``."""
    index: _LineIndex | None


class _LineIndex:
    """Where each key or string value appears, to give rules a line without a second parser.

    Values are found by text, first occurrence at or after the parent's line: plistlib and json
    keep document order, so this lands on the right element for every file a human would write.
    """

    _XML = re.compile(r"<(key|string)>([^<]*)</\1>")
    _JSON = re.compile(r'"((?:[^"\\\n]|\\.)*)"')

    def __init__(self, text: str, kind: str) -> None:
        self._lines: dict[str, list[int]] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if kind == "xml":
                for match in self._XML.finditer(line):
                    value = unescape(match.group(2), {"&quot;": '"', "&apos;": "'"})
                    self._lines.setdefault(value, []).append(number)
            else:
                for match in self._JSON.finditer(line):
                    try:
                        value = json.loads(f'"{match.group(1)}"')
                    except ValueError:
                        continue
                    self._lines.setdefault(value, []).append(number)

    def find(self, value: object, after: int | None) -> int | None:
        """The first line at or after ``after`` holding ``value``, else ``after``."""
        lines = self._lines.get(value) if isinstance(value, str) else None
        if not lines:
            return after
        i = bisect_left(lines, after or 1)
        return lines[i] if i < len(lines) else after


def find(doc: Doc, value: object, after: int | None) -> int | None:
    return doc.index.find(value, after) if doc.index else None


def _text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def load(data: bytes, source: str) -> Doc:
    """The plist or JSON object in ``data``; :class:`PolicyError` when it is neither."""
    if data.startswith(b"bplist"):
        try:
            root = plistlib.loads(data, fmt=plistlib.FMT_BINARY)
        # plistlib raises anything from struct.error to RecursionError on hostile input.
        except Exception as exc:
            raise PolicyError(source, f"not a readable binary plist: {exc}") from None
        return Doc(root, "binary", None)
    text = _text(data)
    if text.lstrip().startswith(("{", "[")):
        try:
            root = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(source, f"not readable JSON: {exc}") from None
        return Doc(root, "json", _LineIndex(text, "json"))
    try:
        root = plistlib.loads(data, fmt=plistlib.FMT_XML)
    except Exception as exc:  # expat errors, InvalidFileException, bad <integer>/<date>/<data>
        line = getattr(exc, "lineno", None)
        raise PolicyError(source, f"not a readable XML plist: {exc}", line) from None
    return Doc(root, "xml", _LineIndex(text, "xml"))


def load_sniffed(data: bytes, tokens: tuple[bytes, ...]) -> Doc | None:
    """The document in ``data`` when it holds one of ``tokens`` and loads; None otherwise, never
    an exception. The substring test comes first so that files of other formats cost no parse."""
    if not any(token in data for token in tokens):
        return None
    try:
        return load(data, "")
    except PolicyError:
        return None


class Warn:
    """Collects :class:`Diagnostic` of one file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Diagnostic] = []

    def __call__(self, line: int | None, message: str) -> None:
        self.items.append(Diagnostic(Location(self.source, line), message))


# ---------------------------------------------------------------------------------------------
# Writing.

PLIST_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
    '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
    '<plist version="1.0">\n'
)


def comment(text: str) -> str:
    """An XML comment of ``text`` (see `comment_text`)."""
    return f"<!-- {comment_text(text)} -->"


__all__ = ["PLIST_HEAD", "Doc", "Warn", "comment", "find", "load", "load_sniffed"]
