"""The package's imports go one way (issue 26): environments -> measurement ->
the GPU harness -> decisions -> reporting -> commands, with no circle and no private name
(``_x``) taken from another module.  Read from the source with ``ast``, so a
lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "mlx_asv"
# Lowest first: a module may import its own layer and the layers before it.
# The GPU harness measures on a GPU host with the measurement's steps; nothing above it imports it.
LAYERS = ("envs", "measure", "gpu", "decide", "report", "commands")


def modules(root, package=PACKAGE):
    """{dotted module name: path} of every module of the package under root."""
    found = {}
    for folder, _, files in os.walk(os.path.join(root, package)):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), root)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join(rel)] = os.path.join(folder, name)
    return found


def imports(path, module):
    """(imported module, imported name or None, the name it is bound to, line)
    of every import in a file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.asname or alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                yield base, alias.name, alias.asname or alias.name, node.lineno


def layer(module):
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2 or parts[1] not in LAYERS:
        return -1  # the package's own modules outside the layers (__init__, cli): below every layer
    return LAYERS.index(parts[1])


def graph(root):
    """{module: {imported package module: line}} and the list of problems."""
    mods = modules(root)
    edges, problems = {}, []
    for mod, path in mods.items():
        edges[mod] = {}
        for target, name, _, line in imports(path, mod):
            full = f"{target}.{name}" if name and f"{target}.{name}" in mods else target
            if not full.split(".")[0] == PACKAGE:
                continue
            if full not in mods:
                problems.append(f"{mod}:{line} imports {full}, which the package does not have")
                continue
            if full != mod:
                edges[mod].setdefault(full, line)
            if name and name.startswith("_") and not name.startswith("__") and full == target:
                problems.append(f"{mod}:{line} imports the private name {name} from {target}")
            if layer(full) > layer(mod):
                problems.append(f"{mod}:{line} imports {full}: upward, "
                                f"{LAYERS[layer(mod)] if layer(mod) >= 0 else PACKAGE} -> {LAYERS[layer(full)]}")
    return edges, problems


def private_attributes(root):
    """'m._x' where m is an imported package module: a private name used across modules."""
    mods = modules(root)
    problems = []
    for mod, path in mods.items():
        aliases = {}
        for target, name, bound, _ in imports(path, mod):
            full = f"{target}.{name}" if name else target
            if full in mods and full != mod:
                aliases[bound] = full
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")):
                problems.append(f"{mod}:{node.lineno} uses the private name {aliases[node.value.id]}.{node.attr}")
    return problems


def circles(edges):
    """Each import circle once, as a list of modules (Tarjan's strongly connected components)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check(root):
    edges, problems = graph(root)
    problems += private_attributes(root)
    problems += [f"import circle: {' <-> '.join(c)}" for c in circles(edges)]
    return problems


def test_the_package_imports_one_way_without_circles_or_private_names():
    assert modules(ROOT), "no mlx_asv package found"
    assert check(ROOT) == []


def write(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    for layer_name in ("",) + LAYERS:
        init = os.path.join(root, PACKAGE, layer_name, "__init__.py")
        if not os.path.exists(init):
            os.makedirs(os.path.dirname(init), exist_ok=True)
            open(init, "w").close()


@pytest.mark.parametrize("files,expected", [
    ({"mlx_asv/envs/ledger.py": "def resolve():\n    from mlx_asv.report import results\n",
      "mlx_asv/report/results.py": ""},
     ["mlx_asv.envs.ledger:2 imports mlx_asv.report.results: upward, envs -> report"]),
    ({"mlx_asv/gpu/gpu_rounds.py": "from mlx_asv.measure import protocol\nfrom mlx_asv.decide import gate\n",
      "mlx_asv/measure/protocol.py": "", "mlx_asv/decide/gate.py": ""},
     ["mlx_asv.gpu.gpu_rounds:2 imports mlx_asv.decide.gate: upward, gpu -> decide"]),
    ({"mlx_asv/report/a.py": "from mlx_asv.report import b\n",
      "mlx_asv/report/b.py": "from . import a\n"},
     ["import circle: mlx_asv.report.a <-> mlx_asv.report.b"]),
    ({"mlx_asv/measure/a.py": "from mlx_asv.envs.ledger import _git\n",
      "mlx_asv/envs/ledger.py": "def _git(): pass\n"},
     ["mlx_asv.measure.a:1 imports the private name _git from mlx_asv.envs.ledger"]),
    ({"mlx_asv/measure/a.py": "from mlx_asv.envs import ledger\nledger._git()\n",
      "mlx_asv/envs/ledger.py": "def _git(): pass\n"},
     ["mlx_asv.measure.a:2 uses the private name mlx_asv.envs.ledger._git"]),
    ({"mlx_asv/commands/gate.py": "from mlx_asv.decide import gate\nfrom mlx_asv.envs import ledger\n",
      "mlx_asv/decide/gate.py": "import mlx_asv.measure.protocol\n", "mlx_asv/measure/protocol.py": "",
      "mlx_asv/envs/ledger.py": ""},
     []),
])
def test_the_check_fails_on_a_synthetic_tree(tmp_path, files, expected):
    write(str(tmp_path), files)
    assert check(str(tmp_path)) == expected
