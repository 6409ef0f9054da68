# SPDX-License-Identifier: Apache-2.0
"""Reading app artifacts safely (pinscan.policy.artifacts.archive): hostile archives built here,
byte by byte where zipfile would not write them, are errors that name the artifact and the
member, never a hang, a traceback or a file written anywhere."""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from pinscan.errors import ArtifactError, InputError
from pinscan.policy.artifacts import kind_of, read_artifact, sniff
from pinscan.policy.artifacts.archive import (
    DirectoryArchive,
    Limits,
    ZipArchive,
    open_archive,
    refusal,
)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _renamed(data: bytes, old: bytes, new: bytes) -> bytes:
    """The zip with a member name changed in place (local header and central directory alike),
    for names zipfile refuses to write."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def _lying_size(data: bytes, name: bytes, size: int) -> bytes:
    """The zip with ``name``'s declared inflated size set to ``size`` in the central directory
    and its local header: a member claiming to be what it is not."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        start = 0
        while (at := out.find(signature, start)) >= 0:
            start = at + 4
            name_at = at + (46 if signature == b"PK\x01\x02" else 30)
            if out[name_at : name_at + len(name)] == name:
                out[at + offset : at + offset + 4] = struct.pack("<I", size)
    return bytes(out)


APK = {"AndroidManifest.xml": b"\x03\x00\x08\x00", "classes.dex": b"dex\n035\0" + b"x" * 100}


def test_a_plain_archive_reads_whole_and_in_chunks() -> None:
    data = os.urandom(300_000)
    with ZipArchive(_zip({**APK, "lib/arm64-v8a/libapp.so": data}), "app.apk") as archive:
        assert archive.names() == ["AndroidManifest.xml", "classes.dex", "lib/arm64-v8a/libapp.so"]
        assert archive.problems == []
        assert archive.read("lib/arm64-v8a/libapp.so") == data
        chunks = list(archive.chunks("lib/arm64-v8a/libapp.so", 65_536))
        assert b"".join(chunks) == data and max(map(len, chunks)) <= 65_536
        assert archive.source("classes.dex") == "app.apk!classes.dex"
        assert kind_of(archive) == "apk"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../etc/cron.d/evil", "'..' in the path"),
        ("assets/../../evil", "'..' in the path"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
        ("assets\\..\\evil", "backslash in the name"),
    ],
)
def test_names_that_leave_a_directory_are_refused_and_reported(
    name: str, reason: str, tmp_path: Path
) -> None:
    before = set(tmp_path.rglob("*"))
    with ZipArchive(_zip({**APK, name: b"payload"}), "app.apk") as archive:
        assert name not in archive.names()
        assert archive.problems == [f"app.apk!{ascii(name)[1:-1]}: refused: {reason}"]
        with pytest.raises(ArtifactError, match="refused") as caught:
            archive.read(name)
        assert caught.value.source == f"app.apk!{name}"
        assert archive.read("classes.dex").startswith(b"dex")  # the rest still reads
    assert set(tmp_path.rglob("*")) == before


def test_a_nul_in_a_name_is_refused_and_shown_escaped() -> None:
    data = _renamed(_zip({**APK, "evil.txtXsh": b"#!/bin/sh"}), b"evil.txtXsh", b"evil.txt\0sh")
    with ZipArchive(data, "app.apk") as archive:
        assert archive.problems == ["app.apk!evil.txt\\x00sh: refused: NUL in the name"]
        assert "\n" not in archive.problems[0] and "\0" not in archive.problems[0]
        assert archive.names() == ["AndroidManifest.xml", "classes.dex"]


def test_an_empty_name_is_refused() -> None:
    # A name of one NUL: zipfile cuts it to "" (whose is_dir() fails).
    data = _renamed(_zip({**APK, "Q": b"x"}, zipfile.ZIP_STORED), b"Q", b"\x00")
    with ZipArchive(data, "app.apk") as archive:
        assert archive.problems == ["app.apk!\\x00: refused: NUL in the name"]
    assert refusal("") == "an empty name"


def test_a_directory_entry_with_a_traversal_name_is_reported() -> None:
    with ZipArchive(_zip({**APK, "../up/": b""}), "app.apk") as archive:
        assert archive.problems == ["app.apk!../up/: refused: '..' in the path"]


def test_a_second_member_of_one_name_is_refused() -> None:
    data = _renamed(_zip({**APK, "classes.deX": b"other"}), b"classes.deX", b"classes.dex")
    with ZipArchive(data, "app.apk") as archive:
        assert archive.read("classes.dex").startswith(b"dex")
        assert archive.problems == [
            "app.apk!classes.dex: refused: a second member of that name (only the first is read)"
        ]


def test_refusal_accepts_ordinary_names() -> None:
    for name in ("AndroidManifest.xml", "res/xml/nsc.xml", "Payload/A.app/Info.plist", "a..b/c"):
        assert refusal(name) is None


def test_a_highly_compressed_member_is_refused_before_it_is_inflated() -> None:
    bomb = _zip({**APK, "assets/zeros": bytes(64 << 20)})
    assert len(bomb) < 100_000  # 64 MiB of zeros in ~64 KB
    started = time.monotonic()
    with ZipArchive(bomb, "bomb.apk") as archive:
        [problem] = archive.problems
        assert re.fullmatch(
            r"bomb.apk!assets/zeros: refused: compressed 10\d\d:1, more than 200:1 "
            r"\(a zip bomb\?\)",
            problem,
        )
        with pytest.raises(ArtifactError, match="zip bomb") as caught:
            archive.read("assets/zeros")
        assert caught.value.source == "bomb.apk!assets/zeros"
    assert time.monotonic() - started < 1.0


def test_a_member_claiming_a_huge_size_is_refused() -> None:
    data = _lying_size(_zip({**APK, "assets/big": b"a" * 1000}), b"assets/big", 0xFFFF_FFF0)
    with ZipArchive(data, "claims.apk") as archive:
        assert archive.problems == [
            "claims.apk!assets/big: refused: declares 4.0 GiB, more than 1.0 GiB (a zip bomb?)"
        ]


def test_a_member_inflating_past_its_declared_size_is_an_error() -> None:
    # Declares 10 bytes and holds 1000: zipfile stops at the declared size, the CRC then fails.
    data = _lying_size(_zip({**APK, "assets/x": b"a" * 1000}), b"assets/x", 10)
    with ZipArchive(data, "lies.apk") as archive:
        with pytest.raises(ArtifactError, match="damaged") as caught:
            archive.read("assets/x")
        assert caught.value.source == "lies.apk!assets/x"


def test_many_members_are_refused_before_any_is_read() -> None:
    data = _zip({f"m{i}": b"" for i in range(2_001)}, zipfile.ZIP_STORED)
    with pytest.raises(ArtifactError, match=r"2001 members, more than 2000 \(a zip bomb\?\)"):
        ZipArchive(data, "many.zip", Limits(members=2_000))


def test_a_central_directory_too_large_for_the_member_limit_is_refused_unparsed() -> None:
    # Long names make a 2 MB directory for 200 members: more than 100 members can need.
    data = _zip({f"{i:04d}" + "n" * 10_000: b"" for i in range(200)}, zipfile.ZIP_STORED)
    with pytest.raises(ArtifactError, match=r"directory of 1\.9 MiB, more than 100 members need"):
        ZipArchive(data, "long.zip", Limits(members=100))


def test_members_declaring_too_much_together_are_refused() -> None:
    # Fifield's overlapping bomb declares many members of moderate size: the total catches it.
    data = _zip({f"m{i}": os.urandom(4_000) for i in range(10)})
    with pytest.raises(ArtifactError, match=r"declare 39\.1 KiB in all, more than 19\.5 KiB") as c:
        ZipArchive(data, "total.apk", Limits(total_size=20_000))
    assert c.value.source == "total.apk"


def test_nested_archives_share_one_inflation_budget() -> None:
    inner = _zip({**APK, "assets/a": os.urandom(30_000)})
    outer = _zip({"base.apk": inner, "split_config.arm64_v8a.apk": inner})
    limits = Limits(total_size=80_000)
    with ZipArchive(outer, "app.apks", limits) as archive:
        assert kind_of(archive) == "apks"
        with archive.open_nested("base.apk") as base:
            assert base.name == "app.apks!base.apk"
            assert base.source("classes.dex") == "app.apks!base.apk!classes.dex"
            assert len(base.read("assets/a")) == 30_000
        # The inner zip's bytes count too: reading the second split goes over.
        with pytest.raises(ArtifactError, match=r"inflates to more than 78\.1 KiB in all"):
            archive.open_nested("split_config.arm64_v8a.apk").read("assets/a")


def test_nesting_is_bounded() -> None:
    data = _zip(APK)
    for _ in range(3):
        data = _zip({"inner.apk": data})
    with ZipArchive(data, "deep.apks") as archive:
        one = archive.open_nested("inner.apk")
        two = one.open_nested("inner.apk")
        with pytest.raises(ArtifactError, match="nested more than 3 deep") as caught:
            two.open_nested("inner.apk")
        assert caught.value.source == "deep.apks!inner.apk!inner.apk!inner.apk"


def test_a_damaged_nested_archive_names_where_it_is() -> None:
    outer = _zip({"base.apk": b"PK\x03\x04 not really"})
    with ZipArchive(outer, "app.apks") as archive, pytest.raises(ArtifactError) as caught:
        archive.open_nested("base.apk")
    assert str(caught.value) == (
        "app.apks!base.apk: not a zip file, or truncated (no end of central directory record)"
    )


@pytest.mark.parametrize("cut", [0.3, 0.9, 0.999])
def test_a_truncated_archive_is_one_error(cut: float, tmp_path: Path) -> None:
    data = _zip({**APK, "lib/x.so": os.urandom(50_000)})
    path = tmp_path / "cut.apk"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path)
    assert isinstance(caught.value, InputError)
    assert caught.value.source == str(path)
    assert "truncated" in caught.value.message or "central directory" in caught.value.message


def test_a_member_cut_short_names_the_member() -> None:
    # The central directory is whole; the member's data is overwritten with garbage.
    payload = os.urandom(50_000)
    data = bytearray(_zip({**APK, "lib/x.so": zlib.compress(payload)}))
    at = data.find(b"lib/x.so") + len(b"lib/x.so")
    data[at + 100 : at + 5_000] = bytes(4_900)
    archive = ZipArchive(bytes(data), "bad.apk")
    with pytest.raises(ArtifactError, match="damaged") as caught:
        archive.read("lib/x.so")
    assert caught.value.source == "bad.apk!lib/x.so"


@pytest.mark.parametrize(
    "content", [b"", b"hello", b"<?xml version='1.0'?><network-security-config/>", bytes(100)]
)
def test_what_is_not_a_zip_is_one_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "app.apk"
    path.write_bytes(content)
    assert sniff(path) is None
    with pytest.raises(ArtifactError, match="not a zip file") as caught:
        read_artifact(path)
    assert caught.value.source == str(path)


def test_a_zip_without_an_app_is_not_an_artifact() -> None:
    data = _zip({"readme.txt": b"hi"})
    assert sniff(data) is None
    with pytest.raises(ArtifactError, match="not an app artifact"):
        read_artifact(data, "x.zip")


def test_a_zip_version_zipfile_lacks_is_one_error() -> None:
    data = bytearray(_zip(APK))
    at = data.find(b"PK\x01\x02")
    data[at + 6 : at + 8] = struct.pack("<H", 99)  # version needed to extract: 9.9
    with pytest.raises(ArtifactError, match=r"cannot be read: zip file version 9\.9") as caught:
        ZipArchive(bytes(data), "new.apk")
    assert caught.value.source == "new.apk"


def test_an_encrypted_member_is_refused_and_named() -> None:
    # Traditional PKWARE encryption: flag bit 0 set (the data need not really be encrypted for
    # a reader to have to refuse it).
    data = bytearray(_zip({**APK, "assets/secret": b"s" * 100}))
    for signature, flags in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            start = at + 4
            name_at = at + (46 if signature == b"PK\x01\x02" else 30)
            if data[name_at : name_at + 13] == b"assets/secret":
                data[at + flags] |= 0x01
    with ZipArchive(bytes(data), "enc.apk") as archive:
        assert archive.problems == ["enc.apk!assets/secret: refused: encrypted"]
        with pytest.raises(ArtifactError, match="refused: encrypted") as caught:
            archive.read("assets/secret")
    assert caught.value.source == "enc.apk!assets/secret"


def test_a_member_too_large_to_hold_is_streamed_only() -> None:
    data = os.urandom(200_000)
    with ZipArchive(_zip({**APK, "lib/big.so": data}), "app.apk", Limits(read_size=100_000)) as a:
        with pytest.raises(ArtifactError, match=r"more than 97\.7 KiB to read at once"):
            a.read("lib/big.so")
        assert b"".join(a.chunks("lib/big.so")) == data


def test_a_member_that_is_missing_is_named() -> None:
    archive = ZipArchive(_zip(APK), "app.apk")
    with pytest.raises(ArtifactError, match="no such member") as caught:
        archive.read("resources.arsc")
    assert caught.value.source == "app.apk!resources.arsc"


def test_kinds_are_told_from_content_not_names(tmp_path: Path) -> None:
    kinds = {
        "apk": {"AndroidManifest.xml": b""},
        "aab": {"base/manifest/AndroidManifest.xml": b"", "BundleConfig.pb": b""},
        "ipa": {"Payload/My App.app/Info.plist": b"bplist00"},
        "apks": {"toc.pb": b"", "splits/base-master.apk": _zip(APK)},
    }
    for kind, members in kinds.items():
        path = tmp_path / f"{kind}.bin"  # a name that says nothing
        path.write_bytes(_zip(members))
        assert sniff(path) == kind
    assert sniff(tmp_path / "missing.apk") is None


def _bundle(root: Path) -> Path:
    app = root / "My.app"
    (app / "Frameworks" / "Net.framework").mkdir(parents=True)
    (app / "Info.plist").write_bytes(b"bplist00")
    (app / "My").write_bytes(b"\xcf\xfa\xed\xfe")
    (app / "pin.cer").write_bytes(b"0\x82")
    (app / "Frameworks" / "Net.framework" / "Net").write_bytes(b"\xcf\xfa\xed\xfe")
    return app


def test_an_app_directory_is_walked_without_leaving_it(tmp_path: Path) -> None:
    app = _bundle(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (app / "escape.cer").symlink_to(secret)
    (app / "up").symlink_to(tmp_path)
    (app / "alias.cer").symlink_to(app / "pin.cer")
    os.mkfifo(app / "fifo")  # a reader that opened it would block
    assert sniff(app) == "app"
    with open_archive(app) as archive:
        assert isinstance(archive, DirectoryArchive)
        assert sorted(archive.names()) == [
            "Frameworks/Net.framework/Net",
            "Info.plist",
            "My",
            "alias.cer",
            "pin.cer",
        ]
        assert archive.read("alias.cer") == b"0\x82"
        assert sorted(archive.problems) == [
            f"{app}!escape.cer: refused: a symlink out of the bundle",
            f"{app}!up: refused: a symlink out of the bundle",
        ]
        with pytest.raises(ArtifactError, match="refused"):
            archive.read("escape.cer")


def test_a_directory_that_is_not_an_app_is_not_an_artifact(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    assert sniff(tmp_path) is None
    with pytest.raises(ArtifactError, match="not an app artifact"):
        read_artifact(tmp_path)


def test_a_directory_with_too_many_files_is_refused(tmp_path: Path) -> None:
    app = _bundle(tmp_path)
    for i in range(20):
        (app / f"f{i}").write_bytes(b"")
    with pytest.raises(ArtifactError, match="more than 10 files"):
        DirectoryArchive(app, Limits(members=10))


def test_damaged_archives_are_errors_never_tracebacks() -> None:
    # Bytes flipped, cut and inserted anywhere in a small APK, 500 times: opening it and reading
    # every member either works or raises ArtifactError (found this way: a zip version zipfile
    # lacks, a name of one NUL).
    base = _zip({**APK, "lib/x.so": os.urandom(2_000), "assets/a.js": b"sha256/" * 300})
    rng = random.Random(15)
    for _ in range(500):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            if (op := rng.random()) < 0.6:
                data[at] = rng.randrange(256)
            elif op < 0.8:
                del data[at : at + rng.randint(1, 40)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 40))
        with contextlib.suppress(ArtifactError), ZipArchive(bytes(data), "m.apk") as archive:
            for name in archive.names():
                with contextlib.suppress(ArtifactError):
                    archive.read(name)
