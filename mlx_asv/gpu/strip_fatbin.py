"""Shrink MLX's CUDA library for one GPU architecture, so a release fits one upload.

An mlx-cuda-13 wheel is 68-90 MB and the lent H200 takes at most 64 MiB of
files per call (issue 13): the earlier repack (wheel contents as tar.xz) still
needed two uploads per release. Most of ``mlx/lib/libmlx.so`` (145 MB in
0.32.4) is device code for every architecture MLX ships (the ELF section
``.nv_fatbin``: SASS for sm_75, 80, 90, 100, 120, 121 and PTX for
compute_120) plus the static symbol table (``.symtab``/``.strtab``, 26 MB).

This zeroes, in place, the payload of every fatbin entry the target GPU can
never load (SASS of another major architecture, PTX newer than the target),
and optionally the static symbol table, which nothing reads at run time (the
dynamic loader uses ``.dynsym``). Entry headers, section sizes and every
offset stay as they were, and the target's SASS stays byte for byte what MLX
shipped, so the driver picks the same kernel image as from the original
wheel. Zeroed bytes compress to almost nothing: MLX 0.32.4 packs to 20.9 MB
instead of 75.9 MB (tar.xz of mlx + mlx-cuda-13, xz -6), 0.30.1 to 18.0 MB.

Checked on the H200 with MLX 0.32.4, 0.32.3 and 0.32.2 (``--keep-arch 90
--zero-symtab``): import, GPU matmul/sort/softmax/cumsum/compiled function
against NumPy, and all of ops.py under asv ran. Use it for timing runs on
that architecture only.

    python3 -m mlx_asv.gpu.strip_fatbin LIB                       # list the entries
    python3 -m mlx_asv.gpu.strip_fatbin LIB --keep-arch 90 [--zero-symtab] --out NEWLIB

Fatbin layout (undocumented by NVIDIA; as read by cuobjdump-like tools): a
section holds containers, each a 16-byte header (magic 0xBA55ED50, version,
header size, size of its entries) followed by entries, each a header (kind
1 = PTX, 2 = ELF/SASS; header size; payload size; architecture at offset 28)
and its payload. The walk must end exactly at each container's end, or
nothing is written.
"""

from __future__ import annotations

import collections
import struct
import sys

from mlx_asv import cli

FATBIN_MAGIC = 0xBA55ED50
KIND_PTX, KIND_ELF = 1, 2


def sections(data):
    """{name: (offset, size)} of an ELF64 little-endian file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    heads = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = heads[shstrndx][4]

    def name(off):
        start = stroff + off
        return bytes(data[start:data.index(0, start)]).decode()

    return {name(h[0]): (h[4], h[5]) for h in heads}


def fatbin_entries(data, offset, size):
    """(kind, arch, payload offset, payload size) of every entry in a .nv_fatbin section."""
    entries = []
    pos, end = offset, offset + size
    while pos + 16 <= end:
        magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # containers are 8-byte aligned; padding between them
            continue
        e, container_end = pos + header_size, pos + header_size + fat_size
        while e < container_end:
            kind, _u, entry_header, payload = struct.unpack_from("<HHIQ", data, e)
            arch = struct.unpack_from("<I", data, e + 28)[0]
            entries.append((kind, arch, e + entry_header, payload))
            e += entry_header + payload
        if e != container_end:
            raise ValueError(f"fatbin container at {pos:#x}: entries end at {e:#x}, not {container_end:#x}")
        pos = container_end
    return entries


def unloadable(kind, arch, keep_arch):
    """True for an entry a GPU of ``keep_arch`` (e.g. 90) can never load: SASS of
    another major architecture, or PTX newer than it."""
    if kind == KIND_ELF:
        return arch // 10 != keep_arch // 10
    if kind == KIND_PTX:
        return arch > keep_arch
    return False


def strip(data, keep_arch, zero_symtab=False):
    """Zero, in ``data`` (a bytearray), what a ``keep_arch`` GPU never loads.
    Returns {"kept": {(kind, arch): bytes}, "zeroed": {...}, "symtab": bytes}."""
    secs = sections(data)
    if ".nv_fatbin" not in secs:
        raise ValueError("no .nv_fatbin section")
    kept, zeroed = collections.Counter(), collections.Counter()
    entries = fatbin_entries(data, *secs[".nv_fatbin"])
    if not any(k == KIND_ELF and not unloadable(k, a, keep_arch) for k, a, _, _ in entries):
        raise ValueError(f"no SASS for sm_{keep_arch // 10}x: stripping would leave nothing to run")
    for kind, arch, off, size in entries:
        if unloadable(kind, arch, keep_arch):
            data[off:off + size] = bytes(size)
            zeroed[(kind, arch)] += size
        else:
            kept[(kind, arch)] += size
    symtab = 0
    if zero_symtab:
        for name in (".symtab", ".strtab"):
            if name in secs:
                off, size = secs[name]
                data[off:off + size] = bytes(size)
                symtab += size
    return {"kept": dict(kept), "zeroed": dict(zeroed), "symtab": symtab}


def main(argv=None):
    p = cli.parser(__doc__, wrap=True)
    p.add_argument("lib")
    p.add_argument("--keep-arch", type=int, help="e.g. 90 for the H100/H200; without it, only list")
    p.add_argument("--zero-symtab", action="store_true")
    p.add_argument("--out")
    a = p.parse_args(argv)
    data = bytearray(open(a.lib, "rb").read())
    if a.keep_arch is None:
        counts = collections.Counter()
        for kind, arch, _, size in fatbin_entries(data, *sections(data)[".nv_fatbin"]):
            counts[("ptx" if kind == KIND_PTX else "sass", arch)] += size
        for (kind, arch), size in sorted(counts.items()):
            print(f"{kind} {arch}: {size} bytes")
        return 0
    if not a.out:
        p.error("--keep-arch needs --out")
    report = strip(data, a.keep_arch, a.zero_symtab)
    with open(a.out, "wb") as f:
        f.write(data)
    for what in ("kept", "zeroed"):
        for (kind, arch), size in sorted(report[what].items()):
            print(f"{what} {'ptx' if kind == KIND_PTX else 'sass'} {arch}: {size} bytes")
    print(f"zeroed symbol table: {report['symtab']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
