# SPDX-License-Identifier: Apache-2.0
"""Reading app artifacts safely: a zip (APK, AAB, split APKs, IPA) or an ``.app`` directory.

Nothing is ever extracted: members are read into memory or streamed in chunks, so a member's name
is a label, never a path. Names a tool would write outside its target (``..``, absolute paths,
backslashes, NULs) are refused and reported all the same, as a sign of a hostile archive.

Every limit is checked against the central directory before anything is inflated (member count,
each member's size and compression ratio, the total), and against the bytes actually produced
while reading, with one budget shared by an archive and the archives nested in it (an ``.apks``
is a zip of APKs): a zip bomb is an :class:`ArtifactError`, never a hang or an exhausted memory.
A member over a per-member limit is refused (reported, and reading it raises); an archive over a
whole-archive limit cannot be opened.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pinscan.errors import ArtifactError


@dataclass(frozen=True)
class Limits:
    """What an artifact may hold. The defaults fit the largest real apps (a few GB inflated,
    tens of thousands of members) and refuse what only a zip bomb needs."""

    members: int = 100_000
    """Members of one archive (a many-member bomb)."""
    member_size: int = 1 << 30
    """Inflated size one member may declare."""
    read_size: int = 256 << 20
    """Size of a member read whole into memory (larger ones are only streamed)."""
    total_size: int = 4 << 30
    """Inflated size of one archive's members together, and bytes inflated from an artifact
    and the archives nested in it together."""
    ratio: int = 200
    """Inflated size over compressed size for a member above ``ratio_floor`` (deflate reaches
    about 1,000 on zeros; real code and resources stay below 20)."""
    ratio_floor: int = 1 << 20
    depth: int = 3
    """Archives nested in one another, the outer one included."""


DEFAULT_LIMITS = Limits()

_DRIVE = re.compile(r"^[A-Za-z]:")
#: The end of central directory record is in the last 22 bytes plus a comment of up to 64 KiB.
_END_SEARCH = 22 + 0xFFFF
#: Central directory bytes per member, generously: 46 fixed, a long name, extra fields.
_ENTRY_BYTES = 1024


def refusal(name: str) -> str | None:
    """Why a member name is refused, ``None`` when it is a plain relative name."""
    if not name:
        return "an empty name"
    if "\0" in name:
        return "NUL in the name"
    if "\\" in name:
        return "backslash in the name"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in the path"
    return None


@dataclass(frozen=True)
class Member:
    """One readable member: ``name`` relative, ``/``-separated; sizes as declared."""

    name: str
    size: int
    compressed_size: int


class _Budget:
    """Bytes an artifact may still inflate, shared with the archives nested in it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, count: int, where: str) -> None:
        self.left -= count
        if self.left < 0:
            raise ArtifactError(
                where, f"inflates to more than {_size(self.limit)} in all (a zip bomb?)"
            )


class Archive:
    """Members of an artifact by name. ``name`` labels the archive in messages and sources
    (``app.apks!base.apk``); ``problems`` are the members refused, one line each."""

    def __init__(self, name: str, limits: Limits, budget: _Budget | None, depth: int) -> None:
        self.name = name
        self.limits = limits
        self.problems: list[str] = []
        self._budget = budget or _Budget(limits.total_size)
        self._depth = depth
        self._members: dict[str, Member] = {}
        self._refused: dict[str, str] = {}

    # -- what subclasses fill in ------------------------------------------------------------

    def _open_stream(self, member: Member) -> io.BufferedIOBase:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the file behind the archive."""

    # -- shared -----------------------------------------------------------------------------

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def source(self, name: str) -> str:
        """Where a member is, for messages and findings: ``app.apk!res/xml/nsc.xml``."""
        return f"{self.name}!{name}"

    def members(self) -> list[Member]:
        """The readable members, in the archive's order (directories left out)."""
        return list(self._members.values())

    def names(self) -> list[str]:
        return list(self._members)

    def get(self, name: str) -> Member | None:
        return self._members.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def read(self, name: str) -> bytes:
        """The member's bytes. Raises :class:`ArtifactError` (naming the member) when it is
        missing, refused, too large to hold in memory, encrypted or damaged."""
        member = self._member(name)
        if member.size > self.limits.read_size:
            raise ArtifactError(
                self.source(name),
                f"{_size(member.size)} is more than {_size(self.limits.read_size)} to read at once",
            )
        return b"".join(self.chunks(name, self.limits.read_size + 1))

    def chunks(self, name: str, size: int = 1 << 20) -> Iterator[bytes]:
        """The member's bytes in chunks of at most ``size``; raises as :meth:`read` does."""
        member = self._member(name)
        where = self.source(name)
        produced = 0
        try:
            with self._open_stream(member) as stream:
                while chunk := stream.read(size):
                    produced += len(chunk)
                    if produced > member.size:
                        raise ArtifactError(where, "inflates to more than its declared size")
                    self._budget.spend(len(chunk), self.name)
                    yield chunk
        except ArtifactError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise ArtifactError(where, f"damaged: {_reason(exc)}") from None
        except NotImplementedError as exc:  # a compression method zipfile lacks
            raise ArtifactError(where, f"cannot be read: {_reason(exc)}") from None
        except OSError as exc:
            raise ArtifactError(where, exc.strerror or str(exc)) from None
        if produced != member.size:
            raise ArtifactError(
                where, f"truncated: {produced} bytes of the {member.size} it declares"
            )

    def open_nested(self, name: str) -> ZipArchive:
        """The zip stored as member ``name`` (a split APK in an ``.apks``), read from memory
        under the same limits and the same inflation budget."""
        if self._depth >= self.limits.depth:
            raise ArtifactError(
                self.source(name), f"archives nested more than {self.limits.depth} deep"
            )
        return ZipArchive(
            self.read(name), self.source(name), self.limits, self._budget, self._depth + 1
        )

    def _member(self, name: str) -> Member:
        member = self._members.get(name)
        if member is not None:
            return member
        reason = self._refused.get(name)
        raise ArtifactError(self.source(name), f"refused: {reason}" if reason else "no such member")

    def _admit(self, name: str, size: int, compressed: int, unsafe: str | None = None) -> int:
        """Records a member or why it is refused; returns the size it adds to the total."""
        reason = unsafe or refusal(name)
        if reason is None and name in self._members:
            reason = "a second member of that name (only the first is read)"
        elif reason is None and size > self.limits.member_size:
            reason = (
                f"declares {_size(size)}, more than {_size(self.limits.member_size)} (a zip bomb?)"
            )
        elif (
            reason is None
            and size > self.limits.ratio_floor
            and size > self.limits.ratio * max(compressed, 1)
        ):
            reason = (
                f"compressed {size // max(compressed, 1)}:1, more than "
                f"{self.limits.ratio}:1 (a zip bomb?)"
            )
        if reason is not None:
            self._refuse(name, reason)
            return 0
        self._members[name] = Member(name, size, compressed)
        return size

    def _refuse(self, name: str, reason: str) -> None:
        self._refused.setdefault(name, reason)
        # ascii(): a hostile name is shown escaped, on one line.
        self.problems.append(f"{self.source(ascii(name)[1:-1])}: refused: {reason}")

    def _check_total(self, total: int) -> None:
        if total > self.limits.total_size:
            raise ArtifactError(
                self.name,
                f"members declare {_size(total)} in all, more than "
                f"{_size(self.limits.total_size)} (a zip bomb?)",
            )


class ZipArchive(Archive):
    """A zip read through its central directory, from a file or from bytes."""

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        name: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        budget: _Budget | None = None,
        depth: int = 1,
    ) -> None:
        if name is None:
            name = "<bytes>" if isinstance(source, bytes) else str(source)
        super().__init__(name, limits, budget, depth)
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._file: io.BufferedIOBase
        if isinstance(source, bytes):
            self._file = io.BytesIO(source)
        else:
            try:
                self._file = open(source, "rb")  # noqa: SIM115 (close() closes it)
            except OSError as exc:
                raise ArtifactError(name, exc.strerror or str(exc)) from None
        try:
            self._check_directory_size()
            self._zip = zipfile.ZipFile(self._file)
        except zipfile.BadZipFile as exc:
            self._file.close()
            message = str(exc)
            if message == "File is not a zip file":
                message = "not a zip file, or truncated (no end of central directory record)"
            raise ArtifactError(name, message) from None
        except (OSError, EOFError, ValueError) as exc:
            self._file.close()
            raise ArtifactError(name, getattr(exc, "strerror", None) or str(exc)) from None
        except NotImplementedError as exc:  # zipfile: a zip version or feature it lacks
            self._file.close()
            raise ArtifactError(name, f"cannot be read: {_reason(exc)}") from None
        except BaseException:
            self._file.close()
            raise
        try:
            infos = self._zip.infolist()
            if len(infos) > limits.members:
                raise ArtifactError(
                    name, f"{len(infos)} members, more than {limits.members} (a zip bomb?)"
                )
            total = 0
            for info in infos:
                if info.orig_filename.endswith("/"):  # a directory (is_dir() fails on "")
                    if (reason := refusal(info.orig_filename)) is not None:
                        self._refuse(info.orig_filename, reason)
                    continue
                encrypted = "encrypted" if info.flag_bits & 0x1 else None
                total += self._admit(
                    info.orig_filename, info.file_size, info.compress_size, encrypted
                )
                self._infos.setdefault(info.orig_filename, info)
            self._check_total(total)
        except BaseException:
            self.close()
            raise

    def _check_directory_size(self) -> None:
        """zipfile builds an object per central directory entry before anyone can count them:
        a directory too large for the member limit is refused first, from the end record."""
        self._file.seek(0, os.SEEK_END)
        size = self._file.tell()
        tail_at = max(0, size - _END_SEARCH)
        self._file.seek(tail_at)
        tail = self._file.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return  # zipfile says what is wrong
        directory = struct.unpack_from("<I", tail, at + 12)[0]
        if directory != 0xFFFF_FFFF and directory > self.limits.members * _ENTRY_BYTES:
            raise ArtifactError(
                self.name,
                f"a central directory of {_size(directory)}, more than {self.limits.members} "
                "members need (a zip bomb?)",
            )

    def _open_stream(self, member: Member) -> io.BufferedIOBase:
        return self._zip.open(self._infos[member.name])

    def close(self) -> None:
        self._zip.close()
        self._file.close()


class DirectoryArchive(Archive):
    """An ``.app`` directory, walked without following a symlink out of it; only regular files
    are members (a FIFO would block a reader)."""

    def __init__(self, root: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(str(root), limits, None, 1)
        self._root = Path(root)
        self._paths: dict[str, Path] = {}
        try:
            real_root = self._root.resolve(strict=True)
            self._walk(real_root)
        except OSError as exc:
            raise ArtifactError(self.name, exc.strerror or str(exc)) from None

    def _walk(self, real_root: Path) -> None:
        total = 0
        count = 0
        todo = [self._root]
        while todo:
            with os.scandir(todo.pop()) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    count += 1
                    if count > self.limits.members:
                        raise ArtifactError(
                            self.name, f"more than {self.limits.members} files (a zip bomb?)"
                        )
                    path = Path(entry.path)
                    name = path.relative_to(self._root).as_posix()
                    if entry.is_symlink():
                        target = path.resolve()
                        if not target.is_relative_to(real_root):
                            self._refuse(name, "a symlink out of the bundle")
                            continue
                        info = target.stat()
                        if not stat.S_ISREG(info.st_mode):
                            continue  # a directory inside: walked under its own name
                        path = target
                    elif entry.is_dir(follow_symlinks=False):
                        todo.append(path)
                        continue
                    elif entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                    else:
                        continue
                    total += self._admit(name, info.st_size, info.st_size)
                    if name in self._members:
                        self._paths[name] = path
        self._check_total(total)

    def _open_stream(self, member: Member) -> io.BufferedIOBase:
        return self._paths[member.name].open("rb")


def open_archive(
    source: str | os.PathLike[str] | bytes, name: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Archive:
    """A zip file (or its bytes), or an ``.app`` directory. Raises :class:`ArtifactError`."""
    if not isinstance(source, bytes) and os.path.isdir(source):
        return DirectoryArchive(source, limits)
    return ZipArchive(source, name, limits)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    value, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


__all__ = [
    "DEFAULT_LIMITS",
    "Archive",
    "DirectoryArchive",
    "Limits",
    "Member",
    "ZipArchive",
    "open_archive",
    "refusal",
]
