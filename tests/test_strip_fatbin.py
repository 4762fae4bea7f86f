"""mlx_asv/gpu/strip_fatbin.py on a synthetic ELF64 with a .nv_fatbin section: it zeroes
exactly the entries a GPU of the kept architecture can never load, keeps the
file's size and every other byte, and refuses what it can't parse."""

import struct

import pytest

from mlx_asv.gpu import strip_fatbin as sf


def _entry(kind, arch, payload):
    # 64-byte entry header: kind, ?, header size, payload size, ... arch at 28
    head = bytearray(64)
    struct.pack_into("<HHIQ", head, 0, kind, 0x101, 64, len(payload))
    struct.pack_into("<I", head, 28, arch)
    return bytes(head) + payload


def _container(entries):
    body = b"".join(entries)
    return struct.pack("<IHHQ", sf.FATBIN_MAGIC, 1, 16, len(body)) + body


def _elf(sections):
    """An ELF64 LE file with the named sections (name -> bytes), in order."""
    names = [b""] + [n.encode() for n in sections] + [b".shstrtab"]
    shstrtab, name_off = b"", []
    for n in names:
        name_off.append(len(shstrtab))
        shstrtab += n + b"\0"
    blobs = [b""] + list(sections.values()) + [shstrtab]
    data, offsets = bytearray(64), []
    for b in blobs:
        while len(data) % 8:
            data += b"\0"
        offsets.append(len(data))
        data += b
    while len(data) % 8:
        data += b"\0"
    shoff = len(data)
    for i, b in enumerate(blobs):
        data += struct.pack("<IIQQQQIIQQ", name_off[i], 1 if i else 0, 0, 0, offsets[i], len(b), 0, 0, 1, 0)
    data[0:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", data, 0x28, shoff)
    struct.pack_into("<HHH", data, 0x3A, 64, len(blobs), len(blobs) - 1)
    return data


def _lib():
    fat = _container([_entry(2, 80, b"A" * 40), _entry(2, 90, b"B" * 24), _entry(1, 120, b"C" * 16)])
    fat += b"\0" * 8  # padding between containers
    fat += _container([_entry(2, 100, b"D" * 8), _entry(1, 90, b"E" * 8), _entry(2, 90, b"F" * 8)])
    return _elf({".text": b"T" * 32, ".nv_fatbin": fat, ".symtab": b"S" * 24, ".strtab": b"N" * 16})


def test_lists_every_entry():
    data = _lib()
    entries = sf.fatbin_entries(data, *sf.sections(data)[".nv_fatbin"])
    assert [(k, a, s) for k, a, _, s in entries] == [
        (2, 80, 40), (2, 90, 24), (1, 120, 16), (2, 100, 8), (1, 90, 8), (2, 90, 8)]


def test_zeroes_only_what_sm90_cannot_load():
    original = _lib()
    data = bytearray(original)
    report = sf.strip(data, 90, zero_symtab=True)
    assert report["zeroed"] == {(2, 80): 40, (1, 120): 16, (2, 100): 8}
    assert report["kept"] == {(2, 90): 32, (1, 90): 8}
    assert report["symtab"] == 40
    assert len(data) == len(original)
    for payload in (b"A" * 40, b"C" * 16, b"D" * 8, b"S" * 24, b"N" * 16):
        assert payload not in data
    for payload in (b"B" * 24, b"E" * 8, b"F" * 8, b"T" * 32):
        assert payload in data
    # only the zeroed payloads changed
    changed = sum(1 for x, y in zip(original, data) if x != y)
    assert changed == 40 + 16 + 8 + 24 + 16


def test_keeps_symtab_unless_asked():
    data = bytearray(_lib())
    assert sf.strip(data, 90)["symtab"] == 0
    assert b"S" * 24 in data


def test_refuses_when_nothing_would_run():
    with pytest.raises(ValueError, match="no SASS"):
        sf.strip(bytearray(_lib()), 75)


def test_refuses_a_broken_container():
    data = _lib()
    off, _ = sf.sections(data)[".nv_fatbin"]
    struct.pack_into("<Q", data, off + 8, 1000)  # the first container claims more than it holds
    with pytest.raises(ValueError, match="entries end"):
        sf.fatbin_entries(data, off, 100000)


def test_cli_writes_the_stripped_file(tmp_path, capsys):
    lib = tmp_path / "libmlx.so"
    lib.write_bytes(bytes(_lib()))
    out = tmp_path / "out.so"
    assert sf.main([str(lib), "--keep-arch", "90", "--zero-symtab", "--out", str(out)]) == 0
    assert out.stat().st_size == lib.stat().st_size
    assert b"A" * 40 not in out.read_bytes()
    assert "zeroed sass 80: 40 bytes" in capsys.readouterr().out
