"""Reading callgrind's dumps: a dump's name, its total instructions, and the
instructions each function executed itself.

tools/instructions.py runs a case's timed call under valgrind's callgrind
and has it write one dump per call (a client request names the dump after
the case). A dump is callgrind's text format
(https://valgrind.org/docs/manual/cl-format.html); only what the verdicts and
the explanation need is read here:

- ``desc: Trigger: Client Request: NAME``: the dump's name;
- the cost lines under each ``fn=``: the function's own instructions
  (*self* cost). The line after a ``calls=`` line is the cost of the call
  (inclusive, counted again in the callee's own lines), so it is skipped,
  as is the position line after a ``jump=``/``jcnd=`` (``--collect-jumps``).

A dump's total is the sum of its functions' own instructions. Its
``totals:`` line is not used: with the statistics zeroed while other threads
run (MLX evaluates on a thread of its own), callgrind 3.19 wrote totals that
had wrapped below zero (18446744073707279343) or held one thread's share,
where the functions' sum was the same for every call of a case (measured:
3751065703 and 3751052832 for two calls of MLX's Softmax 64x16x32x1024).

Names are compressed in the format: ``fn=(12) name`` defines id 12 and a
later ``fn=(12)`` (or ``cfn=(12)``) refers to it; ``ob=`` (the library) works
the same way in its own table. A function is named ``name [library]``.

With ``--dump-instr=yes`` (``positions: instr``) a cost line's first field
is the instruction's address, relative to its library's load address (as
objdump shows the file), written in full (``0x...``), as a distance from the
previous cost line's (``+8``, ``-3``) or as the same (``*``); ``parse`` then
also gives each function's own instructions by address (``instructions``)
and its library's path (``objects``), which tools/instructions.py
disassembles to show a call's hottest machine code.
"""

from __future__ import annotations

import os
import re

_NAMED = re.compile(r"^\((\d+)\)(?:\s+(.*))?$")
_TRIGGER = "desc: Trigger: Client Request: "


class CallgrindError(Exception):
    pass


def _resolve(table, spec):
    """``(12) name`` -> name (remembered); ``(12)`` -> the name it had; ``name`` -> name."""
    m = _NAMED.match(spec.strip())
    if not m:
        return spec.strip()
    ident, name = m.groups()
    if name is not None:
        table[ident] = name
        return name
    return table.get(ident, f"({ident})")


# Code without a symbol (its address for a name: JIT-compiled or stripped
# code) moves from release to release; by address it would show as one
# function gone and another come. It is counted as one.
NO_SYMBOL = "(code without a symbol)"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]+$")


def _function_name(name, ob):
    if _ADDRESS.match(name):
        return f"{NO_SYMBOL} [{ob}]" if ob else NO_SYMBOL
    return f"{name} [{ob}]" if ob else name


def _address(field, last):
    """An instruction position (``0x1f0``, ``+8``, ``-3``, ``*``) -> its address."""
    if field == "*":
        return last
    if field[0] in "+-":
        return last + int(field)
    return int(field, 0)


def parse(text):
    """{"name": str or None, "total": int, "functions": {"fn [lib]": self Ir},
    "events": {event: total}, "instructions": {"fn [lib]": {address: self Ir}},
    "objects": {"fn [lib]": library path}} of one dump (events past Ir when
    callgrind simulated the caches or branches: D1mr, Bcm, ...;
    ``instructions`` empty unless the dump has instruction positions)."""
    positions, event_names = 1, ["Ir"]
    names, fns, obs = None, {}, {}
    ob, ob_path, fn = "", "", None
    by_instr, last = False, 0
    skip_next = False
    functions, instructions, objects = {}, {}, {}
    events = [0]
    seen_totals = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = line[0]
        if skip_next:
            skip_next = False
            if by_instr and (head.isdigit() or head in "+-*"):
                last = _address(line.split()[0], last)  # a call's position still moves the next relative one
            continue
        if head.isdigit() or head in "+-*":
            fields = line.split()
            if by_instr:
                last = _address(fields[0], last)
            if fn is None:
                continue
            values = fields[positions:positions + len(event_names)]
            if values:
                functions[fn] = functions.get(fn, 0) + int(values[0])
                for i, v in enumerate(values):
                    events[i] += int(v)
                if by_instr:
                    own = instructions.setdefault(fn, {})
                    own[last] = own.get(last, 0) + int(values[0])
                    objects.setdefault(fn, ob_path)
            continue
        key, sep, value = line.partition("=")
        if sep and key in ("fn", "ob", "cfn", "cob", "fl", "fi", "fe", "cfi", "cfl", "jump", "jcnd", "calls"):
            if key == "ob":
                ob_path = _resolve(obs, value)
                ob = os.path.basename(ob_path)
            elif key == "cob":
                _resolve(obs, value)
            elif key == "fn":
                fn = _function_name(_resolve(fns, value), ob)
            elif key == "cfn":
                _resolve(fns, value)
            elif key in ("calls", "jump", "jcnd"):
                # the next line is the call's inclusive cost (or the jump's position)
                skip_next = True
            continue
        if line.startswith(_TRIGGER):
            names = line[len(_TRIGGER):]
        elif line.startswith("positions:"):
            positions = len(line.split()[1:]) or 1
            by_instr = line.split()[1:2] == ["instr"]
        elif line.startswith("events:"):
            event_names = line.split()[1:] or ["Ir"]
            events = [0] * len(event_names)
        elif line.startswith("totals:"):
            seen_totals = True
    if not seen_totals:
        # callgrind writes totals last: without them the dump is cut short
        raise CallgrindError("no totals: line (not a callgrind dump, or cut short)")
    return {"name": names, "total": sum(functions.values()), "functions": functions,
            "events": dict(zip(event_names, events)), "instructions": instructions, "objects": objects}


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        try:
            return parse(f.read())
        except CallgrindError as e:
            raise CallgrindError(f"{path}: {e}") from None


# A library's file name differs between builds of the same code: auditwheel
# vendors a wheel's libraries as lib<name>-<8 hex>.so, a wheel's own
# reference BLAS is libblas-41474fda.so.3.9.0 where a source build links
# Debian's libblas.so.3.11.0. Compared under their bare names, a function is
# one function on both sides.
_LIBRARY_FILE = re.compile(r"^(.*) \[(.+?)(?:-[0-9a-f]{8})?\.so(?:\.[0-9.]+)?\]$")


def same_function(name):
    """A function's name with its library's bare name: 'f [libmlx-e5853332.so]' -> 'f [libmlx.so]'."""
    m = _LIBRARY_FILE.match(name)
    return f"{m.group(1)} [{m.group(2)}.so]" if m else name


def _by_bare_name(functions):
    out = {}
    for name, n in functions.items():
        key = same_function(name)
        out[key] = out.get(key, 0) + n
    return out


def function_changes(base, cand, top=8):
    """The functions whose own instructions changed most from ``base`` to
    ``cand`` (two ``functions`` dicts), each under its library's bare name
    (``same_function``): [(name, base Ir, cand Ir)], largest absolute change
    first."""
    base, cand = _by_bare_name(base), _by_bare_name(cand)
    names = set(base) | set(cand)
    rows = [(n, base.get(n, 0), cand.get(n, 0)) for n in names]
    rows = [r for r in rows if r[1] != r[2]]
    rows.sort(key=lambda r: (-abs(r[2] - r[1]), r[0]))
    return rows[:top]
