# SPDX-License-Identifier: Apache-2.0
"""A small DEX writer for the tests: one class with one static method whose bytecode the test
spells out, as d8 would emit it for the calls under test (no Java needed).

Instructions are tuples: ``("const-string", reg, text)``, ``("const/4", reg, value)``,
``("new-array", dst, size_reg, type)``, ``("aput-object", value, array, index)``,
``("new-instance", reg, type)``, ``("invoke-direct" | "invoke-virtual" | "invoke-static",
[regs], method)``, ``("filled-new-array", [regs], type)``, ``("move-result-object", reg)``,
``("if-eqz", reg, offset)``, ``("goto", offset)``, ``("return-void",)``; a method is
``(class, name, return type, (parameter types...))``. The file follows the format (sorted
tables, map list, Adler-32 checksum and SHA-1 signature), so any DEX reader accepts it.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

BUILDER = "Lokhttp3/CertificatePinner$Builder;"
STRING = "Ljava/lang/String;"
STRINGS = "[Ljava/lang/String;"
#: ``CertificatePinner.Builder.add(String, String...)``.
ADD = (BUILDER, "add", BUILDER, (STRING, STRINGS))
INIT = (BUILDER, "<init>", "V", ())
CLASS = "Lcom/example/Pins;"


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _shorty(descriptor: str) -> str:
    return "L" if descriptor[0] in "L[" else descriptor


def _mutf8(text: str) -> bytes:
    return _uleb(len(text.encode("utf-16-le")) // 2) + text.encode() + b"\0"


def build_dex(code: list[tuple], strings: tuple[str, ...] = (), *, aliases: int = 0) -> bytes:
    """A DEX holding ``CLASS.run()V`` with ``code`` and ``strings`` in its string table.
    ``aliases`` more method entries point at the same code item, as a hostile file may."""
    methods = {(CLASS, "run", "V", ())}
    types = {CLASS, "Ljava/lang/Object;", "V"}
    texts = set(strings)
    for insn in code:
        if insn[0] == "const-string":
            texts.add(insn[2])
        elif insn[0] in ("new-array", "new-instance", "filled-new-array"):
            types.add(insn[-1])
        elif insn[0].startswith("invoke"):
            methods.add(insn[2])
    for cls, _name, ret, params in methods:
        types |= {cls, ret, *params}
    protos = {(ret, params) for _c, _n, ret, params in methods}
    shorties = {"".join(_shorty(t) for t in (ret, *params)) for ret, params in protos}
    texts |= types | {name for _c, name, _r, _p in methods} | shorties
    string_list = sorted(texts, key=lambda s: s.encode("utf-16-be"))
    sidx = {s: i for i, s in enumerate(string_list)}
    type_list = sorted(types, key=lambda t: sidx[t])
    tidx = {t: i for i, t in enumerate(type_list)}
    proto_list = sorted(protos, key=lambda p: (tidx[p[0]], [tidx[t] for t in p[1]]))
    pidx = {p: i for i, p in enumerate(proto_list)}
    method_list = sorted(methods, key=lambda m: (tidx[m[0]], sidx[m[1]], pidx[(m[2], m[3])]))
    midx = {m: i for i, m in enumerate(method_list)}

    units: list[int] = []
    registers, outs = 1, 0

    def reg(*numbers: int) -> None:
        nonlocal registers
        registers = max([registers, *(n + 1 for n in numbers)])

    def invoke(op: int, args: list[int], index: int) -> None:
        nonlocal outs
        reg(*args)
        outs = max(outs, len(args))
        regs = [*args, 0, 0, 0, 0, 0][:5]
        units.extend(
            [
                op | regs[4] << 8 | len(args) << 12,
                index,
                regs[0] | regs[1] << 4 | regs[2] << 8 | regs[3] << 12,
            ]
        )

    for insn in code:
        op = insn[0]
        if op == "const-string":
            reg(insn[1])
            index = sidx[insn[2]]
            if index > 0xFFFF:  # const-string/jumbo
                units += [0x1B | insn[1] << 8, index & 0xFFFF, index >> 16]
            else:
                units += [0x1A | insn[1] << 8, index]
        elif op == "const/4":
            reg(insn[1])
            units.append(0x12 | insn[1] << 8 | (insn[2] & 0xF) << 12)
        elif op == "new-array":
            reg(insn[1], insn[2])
            units += [0x23 | insn[1] << 8 | insn[2] << 12, tidx[insn[3]]]
        elif op == "aput-object":
            reg(*insn[1:4])
            units += [0x4D | insn[1] << 8, insn[2] | insn[3] << 8]
        elif op == "new-instance":
            reg(insn[1])
            units += [0x22 | insn[1] << 8, tidx[insn[2]]]
        elif op == "move-result-object":
            reg(insn[1])
            units.append(0x0C | insn[1] << 8)
        elif op == "filled-new-array":
            invoke(0x24, insn[1], tidx[insn[2]])
        elif op.startswith("invoke"):
            code_op = {"invoke-virtual": 0x6E, "invoke-direct": 0x70, "invoke-static": 0x71}[op]
            invoke(code_op, insn[1], midx[insn[2]])
        elif op == "if-eqz":
            reg(insn[1])
            units += [0x38 | insn[1] << 8, insn[2] & 0xFFFF]
        elif op == "goto":
            units.append(0x28 | (insn[1] & 0xFF) << 8)
        elif op == "return-void":
            units.append(0x0E)
        else:
            raise ValueError(f"dexbuild does not know {op}")

    # Layout: header, id tables, then data (string data, type lists, code, class data, map).
    header_size = 0x70
    offsets = {"strings": header_size}
    offsets["types"] = offsets["strings"] + 4 * len(string_list)
    offsets["protos"] = offsets["types"] + 4 * len(type_list)
    offsets["methods"] = offsets["protos"] + 12 * len(proto_list)
    offsets["classes"] = offsets["methods"] + 8 * len(method_list)
    data_start = offsets["classes"] + 32
    data = bytearray()

    def here() -> int:
        return data_start + len(data)

    def align() -> None:
        while len(data) % 4:
            data.append(0)

    string_offsets = []
    for s in string_list:
        string_offsets.append(here())
        data += _mutf8(s)
    align()
    param_offsets: dict[tuple[str, ...], int] = {}
    type_lists_at = here()
    for _ret, params in proto_list:
        if params and params not in param_offsets:
            align()
            param_offsets[params] = here()
            data += struct.pack("<I", len(params))
            data += b"".join(struct.pack("<H", tidx[t]) for t in params)
    align()
    code_at = here()
    data += struct.pack("<HHHHII", registers, 0, outs, 0, 0, len(units))
    data += b"".join(struct.pack("<H", u) for u in units)
    class_data_at = here()
    run = midx[(CLASS, "run", "V", ())]
    data += _uleb(0) + _uleb(0) + _uleb(1 + aliases) + _uleb(0)
    data += _uleb(run) + _uleb(0x9) + _uleb(code_at)
    data += (_uleb(0) + _uleb(0x9) + _uleb(code_at)) * aliases
    align()
    map_at = here()
    items = [
        (0x0000, 1, 0),
        (0x0001, len(string_list), offsets["strings"]),
        (0x0002, len(type_list), offsets["types"]),
        (0x0003, len(proto_list), offsets["protos"]),
        (0x0005, len(method_list), offsets["methods"]),
        (0x0006, 1, offsets["classes"]),
        (0x2002, len(string_list), string_offsets[0]),
    ]
    if param_offsets:
        items.append((0x1001, len(param_offsets), type_lists_at))
    items += [(0x2001, 1, code_at), (0x2000, 1, class_data_at), (0x1000, 1, map_at)]
    data += struct.pack("<I", len(items))
    for kind, count, at in items:
        data += struct.pack("<HHII", kind, 0, count, at)

    tables = bytearray()
    tables += b"".join(struct.pack("<I", at) for at in string_offsets)
    tables += b"".join(struct.pack("<I", sidx[t]) for t in type_list)
    for ret, params in proto_list:
        shorty = "".join(_shorty(t) for t in (ret, *params))
        tables += struct.pack("<III", sidx[shorty], tidx[ret], param_offsets.get(params, 0))
    for cls, name, ret, params in method_list:
        tables += struct.pack("<HHI", tidx[cls], pidx[(ret, params)], sidx[name])
    tables += struct.pack(
        "<IIIIIIII", tidx[CLASS], 1, tidx["Ljava/lang/Object;"], 0, 0xFFFFFFFF, 0, class_data_at, 0
    )
    size = data_start + len(data)
    header = struct.pack(
        "<8s4s20s20I",
        b"dex\n035\0",
        b"\0" * 4,
        b"\0" * 20,
        size,
        header_size,
        0x12345678,
        0,
        0,
        map_at,
        len(string_list),
        offsets["strings"],
        len(type_list),
        offsets["types"],
        len(proto_list),
        offsets["protos"],
        0,
        0,
        len(method_list),
        offsets["methods"],
        1,
        offsets["classes"],
        len(data),
        data_start,
    )
    body = bytearray(header + tables + data)
    body[12:32] = hashlib.sha1(body[32:]).digest()
    body[8:12] = struct.pack("<I", zlib.adler32(bytes(body[12:])))
    return bytes(body)


def pinner_call(host: str, pins: list[str], *, filled: bool = False) -> list[tuple]:
    """``new CertificatePinner.Builder().add(host, pins...)`` as d8 compiles it: the varargs
    array built with ``new-array``/``aput-object``, or with ``filled-new-array``."""
    code: list[tuple] = [
        ("new-instance", 0, BUILDER),
        ("invoke-direct", [0], INIT),
        ("const-string", 1, host),
    ]
    if filled:
        for i, pin in enumerate(pins):
            code.append(("const-string", 3 + i, pin))
        code += [
            ("filled-new-array", [3 + i for i in range(len(pins))], STRINGS),
            ("move-result-object", 2),
        ]
    else:
        code += [("const/4", 2, len(pins)), ("new-array", 2, 2, STRINGS)]
        for i, pin in enumerate(pins):
            code += [("const-string", 3, pin), ("const/4", 4, i), ("aput-object", 3, 2, 4)]
    code.append(("invoke-virtual", [0, 1, 2], ADD))
    return code
