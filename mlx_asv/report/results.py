"""Reading asv's results: results/<machine>/*.json, benchmarks.json, and the
release ledger (commit -> MLX release tag).

:class:`Results` holds one machine's results keyed by (release, benchmark,
case, backend). Where several results files hold a result for the same key
(several asv environments for one release, or a re-run), the result of the
newest run wins, whatever the order the files are read in: a run's time is the
benchmark's ``started_at`` in the file (asv records it per benchmark), or the
file's ``date`` where a benchmark has none.

The settings that change the numbers are in asv.conf.json's matrix, so asv
records them in each results file's ``env_vars`` (and its environment name):
:attr:`Results.env_settings` keeps them per environment; results written
before the matrix had them have none (``None``: not recorded).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile

from mlx_asv.envs import asv_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# asv.conf.json's matrix variables that change the numbers: the install flavour
# (tools/install.py) and MLX's TF32 switch for its CUDA backend.
SETTING_VARS = ("MLX_ASV_FLAVOR", "MLX_ENABLE_TF32")


def parse_settings(spec):
    """'MLX_ENABLE_TF32=0,MLX_ASV_FLAVOR=cuda' -> {var: value}; None for no selection."""
    if not spec:
        return None
    chosen = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        var, sep, value = part.partition("=")
        if not sep or var not in SETTING_VARS:
            raise ReportError(f"bad --settings {part!r}: expected VAR=VALUE with VAR one of "
                              f"{', '.join(SETTING_VARS)}")
        chosen[var] = value
    return chosen


class ReportError(Exception):
    """A bad selection or unusable input: one line for the user, exit code 2."""


# The torch matrix's variable (asv.torch.conf.json, tools/torch_matrix.py).
TORCH_VAR = "MLX_ASV_TORCH"
# Results(torch=ANY_TORCH): every torch version, unselected (to list them).
ANY_TORCH = "any"


def torch_version(data):
    """The torch version a results file was measured with: the torch matrix's
    MLX_ASV_TORCH, else the pinned requirement (asv.conf.json), else the
    environment name's ``torchX``; None if none says."""
    found = (data.get("env_vars") or {}).get(TORCH_VAR) or (data.get("requirements") or {}).get("torch")
    if not found:
        m = re.search(r"(?:^|-)torch(\d[\w.+]*)", data.get("env_name") or "")
        found = m.group(1) if m else None
    return str(found) if found else None


def control_torch(conf_path=asv_config.CONF):
    """asv.conf.json's pinned torch (the control), or None."""
    try:
        return str(asv_config.load_conf(conf_path)["matrix"]["req"]["torch"][0])
    except Exception:  # noqa: BLE001 - no readable config: no control to prefer
        return None


def unquote(value):
    value = str(value)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def version_key(tag):
    parts = re.findall(r"\d+", tag)
    return tuple(int(p) for p in parts) if parts else (math.inf,)


def ledger_tags(ledger_dir=None):
    """{commit hash: release tag} of the release ledger.

    Reads the ledger's tags with git; if there is no ledger, builds one offline
    from tools/mlx_releases.tsv in a temporary folder (the hashes depend only
    on that table, so they match every machine's ledger).
    """
    ledger_dir = ledger_dir or os.path.join(ROOT, "ledger")

    def read(repo):
        env = dict(os.environ, GIT_DIR=repo, LC_ALL="C")
        proc = subprocess.run(["git", "for-each-ref", "--format=%(objectname) %(refname:short)",
                               "refs/tags"], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return None
        return {h: tag for h, tag in (line.split() for line in proc.stdout.splitlines())}

    if os.path.isdir(ledger_dir):
        git_dir = ledger_dir if os.path.isdir(os.path.join(ledger_dir, "objects")) \
            else os.path.join(ledger_dir, ".git")
        tags = read(git_dir)
        if tags:
            return tags
    from mlx_asv.envs import ledger

    with tempfile.TemporaryDirectory() as tmp:
        built = ledger.build(ledger.read_table(), repo=os.path.join(tmp, "ledger"), log=lambda m: None)
    return {commit: rel.tag for rel, commit in built}


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None


def machines(results_dir):
    """Machine names under results_dir (folders with a machine.json)."""
    if not os.path.isdir(results_dir):
        raise ReportError(f"no results folder {results_dir}")
    return sorted(m for m in os.listdir(results_dir)
                  if os.path.isfile(os.path.join(results_dir, m, "machine.json")))


def run_time(row_started_at, file_date):
    """When the run that produced a result began (ms since the epoch): the
    benchmark's ``started_at``, else the results file's ``date``, else 0."""
    for t in (row_started_at, file_date):
        if finite(t):
            return t
    return 0


class Results:
    """The asv results of one machine, keyed by (release, benchmark, case, backend)."""

    def __init__(self, results_dir, machine=None, ledger_dir=None, tags=None, settings=None, torch=None):
        self.results_dir = results_dir
        # {var: value}: read only the results files recorded with these settings
        self.settings = settings
        names = machines(results_dir)
        if not names:
            raise ReportError(f"no asv results in {results_dir} (no <machine>/machine.json)")
        files_of = {m: self._result_files(m) for m in names}
        if machine is None:
            if len(names) == 1:
                machine = names[0]
            else:  # the machine with the most recent results file
                machine = max(names, key=lambda m: max(
                    [os.path.getmtime(p) for p in files_of[m]] or [0]))
        elif machine not in names:
            raise ReportError(f"unknown machine {machine!r}; results have: {', '.join(names)}")
        self.machine = machine
        self.machine_info = read_json(os.path.join(results_dir, machine, "machine.json"))
        bench_path = os.path.join(results_dir, "benchmarks.json")
        self.benchmarks = read_json(bench_path) if os.path.exists(bench_path) else {}
        self.tags = tags if tags is not None else ledger_tags(ledger_dir)
        self.points = {}  # (release, bench, case, backend) -> dict
        self.release_info = {}  # release -> {commit, date, env_names, requirements, python}
        self.bench_meta = {}  # bench -> {param_names, cases (ordered), backends}
        self.env_settings = {}  # env name -> {setting var: value, None if not recorded}
        files = [(path, read_json(path)) for path in sorted(files_of[machine])]
        # torch: one version's results at a time (the torch matrix's environments
        # hold several); by default the only one, else the control (asv.conf.json's)
        self.torch_versions = sorted({v for _, d in files for v in [torch_version(d)] if v},
                                     key=version_key)
        self.torch = self._pick_torch(torch)
        for path, data in files:
            if self.torch not in (None, ANY_TORCH) and torch_version(data) not in (self.torch, None):
                continue
            self._load(data, os.path.basename(path))
        if not self.release_info:
            if self.settings:
                raise ReportError(f"machine {machine!r} has no results recorded with "
                                  f"{', '.join(f'{k}={v}' for k, v in self.settings.items())}")
            raise ReportError(f"machine {machine!r} has no results files in {results_dir}/{machine}")

    def _pick_torch(self, torch):
        have = self.torch_versions
        if torch == ANY_TORCH:
            return ANY_TORCH
        if torch is not None:
            if torch not in have:
                raise ReportError(f"no results of torch {torch} on machine {self.machine!r}; results have torch "
                                  f"{', '.join(have) or 'not recorded'}")
            return torch
        if len(have) <= 1:
            return have[0] if have else None
        control = control_torch()
        if control in have:
            return control
        raise ReportError(f"machine {self.machine!r} has results of torch {', '.join(have)} (the torch matrix) "
                          f"and none of the control {control}: choose one with --torch, or compare them with "
                          f"--torch-versions all")

    def _result_files(self, machine):
        folder = os.path.join(self.results_dir, machine)
        return [os.path.join(folder, n) for n in os.listdir(folder)
                if n.endswith(".json") and n != "machine.json"]

    def _load(self, data, source=""):
        if data.get("version") != 2 or "commit_hash" not in data:
            return
        env_vars = data.get("env_vars") or {}
        if self.settings and any(env_vars.get(k) != v for k, v in self.settings.items()):
            return
        self.env_settings[data.get("env_name", "")] = {k: env_vars.get(k) for k in SETTING_VARS}
        commit = data["commit_hash"]
        release = self.tags.get(commit, commit[:8])
        columns = data.get("result_columns") or []
        info = self.release_info.setdefault(release, {
            "commit": commit, "date": data.get("date"), "env_names": set(),
            "requirements": {}, "python": data.get("python")})
        info["env_names"].add(data.get("env_name", ""))
        info.setdefault("torch", set()).add(torch_version(data))
        info["requirements"].update(data.get("requirements") or {})
        for bench, row in (data.get("results") or {}).items():
            r = dict(zip(columns, row))
            params = r.get("params") or []
            meta = self.benchmarks.get(bench, {})
            param_names = meta.get("param_names") or [f"param{i + 1}" for i in range(len(params))]
            bmeta = self.bench_meta.setdefault(bench, {"param_names": param_names, "cases": [],
                                                       "backends": []})
            combos = list(itertools.product(*params)) if params else [()]
            values = r.get("result")
            started = run_time(r.get("started_at"), data.get("date"))
            for i, combo in enumerate(combos):
                labels = [unquote(p) for p in combo]
                if "backend" in param_names and len(labels) == len(param_names):
                    k = param_names.index("backend")
                    backend = labels[k]
                    case = ", ".join(labels[:k] + labels[k + 1:]) or "-"
                else:
                    backend, case = "-", ", ".join(labels) or "-"
                if case not in bmeta["cases"]:
                    bmeta["cases"].append(case)
                if backend not in bmeta["backends"]:
                    bmeta["backends"].append(backend)

                def col(name):
                    seq = r.get(name)
                    return seq[i] if isinstance(seq, list) and i < len(seq) else None

                value = values[i] if isinstance(values, list) and i < len(values) else None
                if value is not None and not finite(value):
                    status = "skipped"  # asv: NaN = skipped (NotImplementedError)
                elif value is None:
                    status = "failed"
                else:
                    status = "ok"
                key = (release, bench, case, backend)
                old = self.points.get(key)
                # Several files for one release: the newest run wins, whatever its
                # status and whatever the order the files are read in (ties: the
                # file name decides, so the result still does not depend on order).
                if old is not None and (old["started_at"], old["source"]) > (started, source):
                    continue
                self.points[key] = {
                    "status": status, "value": value if status == "ok" else None,
                    "ci": (col("stats_ci_99_a"), col("stats_ci_99_b")),
                    "q": (col("stats_q_25"), col("stats_q_75")),
                    "number": col("stats_number"), "repeat": col("stats_repeat"),
                    "started_at": started, "source": source,
                    # asv's name of the case, as mlx_asv/measure/protocol.py keys its sessions
                    "asv_key": f"{bench}({', '.join(combo)})" if combo else bench,
                }

    # ------------------------------------------------------------------

    def mixed_settings(self):
        """The environments, with their settings, if the results loaded were
        recorded under more than one setting (e.g. TF32 on and off), else []."""
        recorded = {env: s for env, s in self.env_settings.items() if any(v is not None for v in s.values())}
        if len({tuple(sorted(s.items())) for s in recorded.values()}) <= 1:
            return []
        return sorted(recorded.items())

    def releases(self):
        """Releases with results, in ledger (version) order."""
        return sorted(self.release_info, key=version_key)

    def unit(self, bench):
        meta = self.benchmarks.get(bench, {})
        if meta:
            return meta.get("unit", "seconds")
        return "seconds" if bench.rsplit(".", 1)[-1].startswith("time_") else "unit"


def _short_family(bench, all_benches):
    parts = bench.split(".")
    if len(parts) < 3:
        return parts[-1]
    cls = parts[-2]
    siblings = {b for b in all_benches if b.split(".")[:-1] == parts[:-1]}
    return cls if len(siblings) == 1 else f"{cls}.{parts[-1]}"


def families(all_benches):
    """{benchmark: family name}, the names unique.

    'ops.Softmax.time_op' -> 'Softmax' ('Class.method' where a class has
    several timed methods). A name that two modules would share, like
    'LayerNorm' of ops.py and of metal_kernels.py, is qualified with the
    module for all of them: 'ops.LayerNorm', 'metal_kernels.LayerNorm'.
    """
    all_benches = list(dict.fromkeys(all_benches))
    short = {b: _short_family(b, all_benches) for b in all_benches}
    owners = {}
    for b, name in short.items():
        owners.setdefault(name, set()).add(b)
    out = {}
    for b, name in short.items():
        if len(owners[name]) > 1:
            parts = b.split(".")
            module = ".".join(parts[:-2] if len(parts) >= 3 else parts[:-1])
            name = f"{module}.{name}" if module else b
        out[b] = name
    counts = {}
    for name in out.values():
        counts[name] = counts.get(name, 0) + 1
    return {b: (b if counts[name] > 1 else name) for b, name in out.items()}


def family_of(bench, all_benches):
    """The (unique) family name of one benchmark; see :func:`families`."""
    return families(list(all_benches) + [bench])[bench]
