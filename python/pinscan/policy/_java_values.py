# SPDX-License-Identifier: Apache-2.0
"""Attribute and text values decoded as Java and Android decode them, for the readers of
``network_security_config.xml`` (Android's own and TrustKit-Android's).

Each function reproduces one library call exactly, including what it accepts that a strict
reader would not, so that pinscan reaches the verdict the device reaches.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pinscan.policy._xml import CompiledValue


def java_trim(text: str) -> str:
    """``String.trim()``: strips code points up to U+0020, not Unicode spaces."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def java_parse_boolean(value: str) -> bool:
    """``Boolean.parseBoolean``: true only for ``true`` in any case."""
    return value.lower() == "true"


#: The value types ``XmlBlock.Parser.getAttributeBooleanValue`` reads as a boolean: every
#: ``Res_value`` type from ``TYPE_FIRST_INT`` to ``TYPE_LAST_INT`` (integers, booleans, colours).
_INT_KINDS = ("boolean", "int_dec", "int_hex", "color")


def aapt2_bool(value: str | None, default: bool) -> tuple[bool, bool]:
    """``getAttributeBooleanValue`` on the compiled resource. Returns (value, understood).

    A source config's values are typed first as aapt2 types them (:func:`aapt2_value`), so a
    value reads the same in source as compiled. The typed value is read as
    ``XmlBlock.Parser.getAttributeBooleanValue`` reads it (AOSP
    ``core/java/android/content/res/XmlBlock.java``): any integer type (``TYPE_FIRST_INT`` to
    ``TYPE_LAST_INT``: decimal, hex, boolean, colour) is a boolean, non-zero true
    (``includeSubdomains="1"``, ``"0x1"``, ``"TRUE"``); anything else (a string such as
    ``"yes"``, a float, a reference) reads as the default."""
    if value is None:
        return default, True
    if not isinstance(value, CompiledValue):
        value = aapt2_value(value)
    if value.kind in _INT_KINDS:
        return bool(value.data), True
    if value.kind != "string":
        return default, False
    word = value.strip()
    if word in ("true", "TRUE", "True"):
        return True, True
    if word in ("false", "FALSE", "False"):
        return False, True
    return default, False


_BOOL_WORDS = {
    "true": True,
    "TRUE": True,
    "True": True,
    "false": False,
    "FALSE": False,
    "False": False,
}
_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGITS = re.compile(r"-?[0-9]+")
_C_SPACE = " \t\n\v\f\r"


def aapt2_value(text: str) -> CompiledValue:
    """An un-namespaced attribute as aapt2 compiles it into the app: AOSP
    ``tools/aapt2/link/XmlReferenceLinker.cpp`` gives it the default attribute (``TYPE_ANY``) and
    ``ResourceUtils::TryParseItemForAttribute`` tries, in order, ``@null``/``@empty``, a
    reference (``@raw/ca``), a colour (``#rgb``, ``#argb``, ``#rrggbb``, ``#aarrggbb``), a
    boolean (``true``/``TRUE``/``True``/``false``/``FALSE``/``False``, trimmed), an integer
    (``ResTable::stringToInt``: decimal, ``0x`` hex); anything else stays a string (floats and
    dimensions are typed too, but no network security config attribute reads them). The text is
    what ``getAttributeValue`` then returns (``TypedValue.coerceToString`` for a typed value)."""
    word = text.strip(_C_SPACE)
    if word in ("@null", "@empty"):
        return CompiledValue(word, "null", 0)
    if word.startswith(("@", "?")):
        return CompiledValue(word, "reference", None)
    if word.startswith("#") and len(word) in (4, 5, 7, 9) and _HEX.fullmatch(word[1:]):
        digits = word[1:]
        if len(digits) <= 4:
            digits = "".join(c * 2 for c in digits)
        color = int(digits, 16) | (0xFF000000 if len(digits) == 6 else 0)
        return CompiledValue(f"#{color:08x}", "color", color)
    if word in _BOOL_WORDS:
        flag = _BOOL_WORDS[word]
        return CompiledValue("true" if flag else "false", "boolean", flag)
    if word[:2] == "0x" and word[2:] and _HEX.fullmatch(word[2:]):
        number = int(word[2:], 16)
        if number <= 0xFFFFFFFF:
            return CompiledValue(f"0x{number:x}", "int_hex", number)
    elif _DIGITS.fullmatch(word):
        number = int(word)
        if -(2**31) <= number < 2**31:
            return CompiledValue(str(number), "int_dec", number)
    return CompiledValue(aapt2_string(text), "string", None)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def aapt2_string(text: str) -> str:
    """An attribute string as aapt2 writes it into the app: escapes processed, spaces and
    quotes kept (AOSP ``tools/aapt2/format/binary/XmlFlattener.cpp``: ``StringBuilder`` with
    ``preserve_spaces``; ``ResourceUtils.cpp`` ``StringBuilder::AppendText``): ``\\t``,
    ``\\n``, ``\\uXXXX`` (up to four hex digits), any other escaped character as itself, a
    trailing backslash dropped; a bad ``\\u`` escape leaves the empty string."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        i += 1
        if char != "\\":
            out.append(char)
            continue
        if i >= n:
            break
        char = text[i]
        i += 1
        if char == "t":
            out.append("\t")
        elif char == "n":
            out.append("\n")
        elif char == "u":
            code = 0
            for _ in range(4):
                if i >= n:
                    break
                if text[i] not in _HEX_DIGITS:
                    return ""
                code = code * 16 + int(text[i], 16)
                i += 1
            if 0xD800 <= code <= 0xDFFF:
                return ""
            out.append(chr(code))
        else:
            out.append(char)
    return "".join(out)


_B64 = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


def android_base64(text: str) -> bytes | None:
    """``android.util.Base64.decode(text, DEFAULT)``: bytes outside the alphabet are skipped,
    padding is optional but must be right when present. None where Android throws."""
    state, value, out = 0, 0, bytearray()
    for byte in text.encode("utf-8", "surrogatepass"):
        digit = _B64.get(byte, -2 if byte == ord("=") else -1)
        if digit == -1:
            continue
        if state in (0, 1):
            if digit < 0:
                return None
            value, state = (value << 6) | digit, state + 1
        elif state == 2:
            if digit >= 0:
                value, state = (value << 6) | digit, 3
            else:
                out.append((value >> 4) & 0xFF)
                state = 4
        elif state == 3:
            if digit >= 0:
                value = (value << 6) | digit
                out += bytes(((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF))
                state = 0
            else:
                out += bytes(((value >> 10) & 0xFF, (value >> 2) & 0xFF))
                state = 5
        elif state == 4 and digit == -2:
            state = 5
        else:  # data after padding, or one "=" where two are needed
            return None
    if state in (1, 4):
        return None
    if state == 2:
        out.append((value >> 4) & 0xFF)
    elif state == 3:
        out += bytes(((value >> 10) & 0xFF, (value >> 2) & 0xFF))
    return bytes(out)


_DATE = re.compile(r"[ \t]*([0-9]+)-[ \t]*([0-9]+)-[ \t]*([0-9]+)")


@dataclass(frozen=True)
class JavaDate:
    """A date Java accepted."""

    day: dt.date | None
    """None: a year past 9999, which is never reached."""


def java_date(text: str) -> JavaDate | None:
    """``SimpleDateFormat("yyyy-MM-dd")`` with ``setLenient(false)``: any digit count per field,
    text after the day ignored, impossible dates refused. None where Java throws."""
    found = _DATE.match(text)
    if not found:
        return None
    # Leading zeros stripped first: int() of thousands of digits raises.
    year_digits, month_digits, day_digits = (part.lstrip("0") or "0" for part in found.groups())
    if len(month_digits) > 2 or len(day_digits) > 2:
        return None
    month, day = int(month_digits), int(day_digits)
    # The Gregorian calendar repeats every 400 years: a year past 9999 is checked through its
    # twin in 2000-2399, and is never reached.
    far = len(year_digits) > 4
    year = int(year_digits[-4:]) % 400 + 2000 if far else int(year_digits)
    try:
        day_of = dt.date(year, month, day)
    except ValueError:
        return None
    return JavaDate(None if far else day_of)


__all__ = [
    "JavaDate",
    "aapt2_bool",
    "aapt2_string",
    "aapt2_value",
    "android_base64",
    "java_date",
    "java_parse_boolean",
    "java_trim",
]
