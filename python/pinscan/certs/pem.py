# SPDX-License-Identifier: Apache-2.0
"""A small, strict PEM reader (RFC 7468, with RFC 1421 headers for legacy encrypted keys).

Text around the blocks (comments, ``openssl x509 -text`` output) is ignored, line ends may be LF,
CRLF or CR, and whitespace inside the base64 is allowed, as RFC 7468 section 3's lax parsing says.
Everything else that is wrong (bad base64, a BEGIN without its END, mismatched labels) is an
:class:`~pinscan.errors.InputError` naming the line, never a silently skipped block.
"""

from __future__ import annotations

import base64
import re
import textwrap
from dataclasses import dataclass

from pinscan.errors import InputError

# RFC 7468 section 3: label characters are printable ASCII except "-", with single inner "-" or
# spaces ("NEW CERTIFICATE REQUEST").
_LABELCHAR = rb"[\x21-\x2c\x2e-\x7e]"
_BOUNDARY = re.compile(
    rb"-----(BEGIN|END) ((?:" + _LABELCHAR + rb"(?:[- ]?" + _LABELCHAR + rb")*)?)-----"
)
# A line that starts (after whitespace) with five dashes: a boundary, or text such as a ruler.
# It is matched from the LF before it, a literal that lets `re` skip ahead fast.
_DASHES_LINE = re.compile(rb"\n[ \t\v\f]*(-----[^\n]*?)[ \t\v\f]*(?=\n|\Z)")
_BEGIN_LINE = re.compile(rb"(?:^|\r)[ \t\v\f]*-----BEGIN", re.MULTILINE)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BASE64_INVALID = re.compile(rb"[^A-Za-z0-9+/=]")
_WHITESPACE = b" \t\n\r\v\f"
# A header line (RFC 1421 section 4.6): a name, a colon, a value; base64 never holds a colon.
_HEADER = re.compile(rb"([!-9;-~]+):[ \t]*(.*)")


@dataclass(frozen=True)
class PemBlock:
    """One ``-----BEGIN label-----`` ... ``-----END label-----`` block.

    ``der`` is the decoded body: the DER object, or its ciphertext when ``headers`` say
    ``Proc-Type: 4,ENCRYPTED`` (legacy OpenSSL encryption, decrypted from :meth:`encode`'s output by
    ``cryptography``). ``line`` is the 1-based line of the BEGIN.
    """

    label: str
    der: bytes
    line: int
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        """The block as canonical PEM: headers kept, base64 in 64 columns, LF line ends."""
        lines = [f"-----BEGIN {self.label}-----"]
        if self.headers:
            lines += [f"{name}: {value}" for name, value in self.headers]
            lines.append("")
        lines += textwrap.wrap(base64.b64encode(self.der).decode("ascii"), 64)
        lines.append(f"-----END {self.label}-----\n")
        return "\n".join(lines).encode("latin-1")


def is_pem(data: bytes) -> bool:
    """Whether ``data`` holds a PEM BEGIN line, so that :func:`read_pem` finds a block or fails.

    Examples
    --------
    >>> is_pem(b"# a comment\\n-----BEGIN CERTIFICATE-----\\n")
    True
    >>> is_pem(b"0\\x82\\x01\\x0a")
    False
    """
    return _BEGIN_LINE.search(data) is not None


def read_pem(data: bytes, source: str) -> list[PemBlock]:
    """Every PEM block in ``data``, in order.

    Parameters
    ----------
    data
        The file's bytes: one block or a bundle, with any text between the blocks.
    source
        What ``data`` is (a path), for error messages.

    Returns
    -------
    list[PemBlock]
        The blocks; empty when ``data`` holds no BEGIN line.

    Raises
    ------
    InputError
        A block is malformed: ``"line N: ..."`` says where and what.

    Examples
    --------
    >>> pem = b"-----BEGIN X-----\\nAQID\\n-----END X-----\\n"
    >>> read_pem(b"hello\\r\\n" + pem.replace(b"\\n", b"\\r\\n"), "x.pem")
    [PemBlock(label='X', der=b'\\x01\\x02\\x03', line=2, headers=())]
    """
    # One LF per line end, as `bytes.splitlines` counts them, so line numbers still hold; and one
    # before the first line, which `_DASHES_LINE` needs.
    text = b"\n" + data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    blocks = []
    line, counted = 0, 0
    begin: tuple[str, int, int] | None = None  # label, line and body offset of an open block
    for match in _DASHES_LINE.finditer(text):
        line += text.count(b"\n", counted, match.start() + 1)
        counted = match.start() + 1
        kind, label = _boundary(match[1], line, source)
        if kind is None:
            continue
        if begin is None:
            if kind == "END":
                msg = f"line {line}: END {label} without a BEGIN"
                raise InputError(source, msg)
            begin = (label, line, match.end() + 1)
            continue
        open_label, open_line, body = begin
        if kind == "BEGIN":
            msg = f"line {open_line}: BEGIN {open_label} has no END before the BEGIN on line {line}"
            raise InputError(source, msg)
        if label != open_label:
            msg = f"line {line}: END {label} does not match BEGIN {open_label} on line {open_line}"
            raise InputError(source, msg)
        blocks.append(_block(text[body : match.start()], open_label, open_line, source))
        begin = None
    if begin is not None:
        msg = f"line {begin[1]}: BEGIN {begin[0]} has no matching END {begin[0]}"
        raise InputError(source, msg)
    return blocks


def _boundary(text: bytes, n: int, source: str) -> tuple[str | None, str]:
    """Whether a line that starts with five dashes is a BEGIN or END line, and its label."""
    if not text.startswith((b"-----BEGIN", b"-----END")):
        return None, ""
    match = _BOUNDARY.fullmatch(text)
    if match is None:
        shown = text.decode("ascii", "backslashreplace")
        msg = f"line {n}: malformed PEM boundary {shown!r}"
        raise InputError(source, msg)
    return match[1].decode("ascii"), match[2].decode("ascii")


def _block(body: bytes, label: str, begin: int, source: str) -> PemBlock:
    """The block of the text between the BEGIN on line ``begin`` and its END."""
    if b":" not in body:
        # No headers: the common case, checked whole; line by line only to say what is wrong.
        compact = body.translate(None, _WHITESPACE)
        if len(compact) % 4 == 0 and _BASE64.fullmatch(compact):
            return PemBlock(label, base64.b64decode(compact), begin)
    headers: list[tuple[str, str]] = []
    lines: list[tuple[int, bytes]] = []
    in_headers = True
    for n, raw in enumerate(body.split(b"\n"), start=begin + 1):
        stripped = raw.strip()
        if in_headers and headers and raw[:1] in (b" ", b"\t") and stripped:
            # A folded header: its value goes on after leading whitespace (RFC 822 3.1.1).
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {stripped.decode('latin-1')}")
            continue
        header = _HEADER.fullmatch(stripped) if in_headers else None
        if header is not None:
            headers.append((header[1].decode("latin-1"), header[2].decode("latin-1")))
            continue
        if in_headers and headers and stripped:
            msg = f"line {n}: expected an empty line after the PEM headers"
            raise InputError(source, msg)
        if stripped:
            lines.append((n, stripped))
            in_headers = False
        elif headers:
            in_headers = False
    return PemBlock(label, _decode(lines, begin, label, source), begin, tuple(headers))


def _decode(body: list[tuple[int, bytes]], begin: int, label: str, source: str) -> bytes:
    """The base64 body lines of one block, decoded, with the line of any fault."""
    starts = []  # (offset in the joined base64, line number) of each body line
    chunks = []
    offset = 0
    for n, text in body:
        chunk = text.translate(None, _WHITESPACE)
        bad = _BASE64_INVALID.search(chunk)
        if bad is not None:
            char = bad[0].decode("ascii", "backslashreplace")
            msg = f"line {n}: invalid base64 character {char!r}"
            raise InputError(source, msg)
        starts.append((offset, n))
        chunks.append(chunk)
        offset += len(chunk)
    text = b"".join(chunks)
    data = text.rstrip(b"=")
    if b"=" in data:
        where = data.index(b"=")
        n = max(line for start, line in starts if start <= where)
        msg = f"line {n}: base64 goes on after its '=' padding"
        raise InputError(source, msg)
    if len(text) - len(data) > 2:
        msg = f"line {begin}: the base64 of {label} ends in more than two '='"
        raise InputError(source, msg)
    if len(text) % 4:
        msg = f"line {begin}: the base64 of {label} is truncated ({len(text)} characters)"
        raise InputError(source, msg)
    return base64.b64decode(text, validate=True)
