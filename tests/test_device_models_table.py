"""Tests of mlx_asv/gpu/device_models_table.py (the models.py cases timed without asv).

Runs the script's ``main`` in-process on the tiny CPU selection
(bert-base-uncased, 50 characters, batch 1, on mlx_cpu and torch_cpu), with
a GPU backend that this machine lacks among the requested ones.
"""

import importlib.util
import io
import json
import re

import pytest

from benchmarks import common, models
from benchmarks.lib import model_inputs as mi
from mlx_asv.gpu import device_models_table as dmt
from mlx_asv.gpu import timing

HAVE_BOTH = (
    common.mlx() is not None
    and common.torch() is not None
    and importlib.util.find_spec("transformers") is not None
)
needs_both = pytest.mark.skipif(not HAVE_BOTH, reason="needs MLX, torch and transformers")

TINY = ["--models", "bert-base-uncased", "--lengths", "50", "--batches", "1"]


def _clean_env(mp):
    """The shipped tokenizers and seeded weights, all backends selectable."""
    mp.delenv(mi.CHECKPOINTS_ENV, raising=False)
    mp.delenv("HF_HUB_OFFLINE", raising=False)
    mp.delenv(common.SELECTED_ENV, raising=False)
    mi.encoder.cache_clear()


def _main(argv, mp):
    out = io.StringIO()
    rc = dmt.main(argv, out=out)
    return rc, out.getvalue()


def _table_rows(text):
    """Markdown table -> (header cells, [row cells])."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return split[0], split[2:]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run of the tiny selection on mlx_cpu, torch_cpu and (absent) mlx_gpu."""
    if not HAVE_BOTH:
        pytest.skip("needs MLX, torch and transformers")
    path = str(tmp_path_factory.mktemp("dmt") / "out.json")
    builds = []
    real_build = models.build
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)

        def counting_build(name, be, small=False):
            builds.append((name, be.name, small))
            return real_build(name, be, small)

        mp.setattr(models, "build", counting_build)
        # two timed calls a backend are enough for a median and an IQR (the defaults, 5 calls
        # and 0.5 s, took ~16 forward passes of ~0.3 s here)
        rc, text = _main(["--backends", "mlx_cpu,torch_cpu,mlx_gpu", *TINY, "--min-calls", "2", "--min-time", "0",
                          "--json", path], mp)
    mi.encoder.cache_clear()
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return rc, text, data, builds


@needs_both
def test_tiny_cpu_table(tiny_run):
    rc, text, data, builds = tiny_run
    assert rc == 0, text
    header, rows = _table_rows(text)
    for col in ("mlx_cpu ms", "torch_cpu ms", "torch_cpu/mlx_cpu", "tokens/seq"):
        assert col in header, header
    row = next(r for r in rows if r[:3] == ["bert-base-uncased", "50", "1"])
    cell = dict(zip(header, row))
    for col in ("mlx_cpu ms", "torch_cpu ms", "torch_cpu/mlx_cpu"):
        assert float(cell[col]) > 0, (col, cell)
    # token widths from the benchmark's own Tokens track (models.py docstring: 13 / 13)
    assert (int(cell["tokens/seq"]), int(cell["real tokens"])) == (13, 13)
    # one build per backend: Inference.setup reused the cached model
    assert sorted(builds) == [("bert-base-uncased", "mlx_cpu", False), ("bert-base-uncased", "torch_cpu", False)]
    # JSON: both cases ok with their samples, complete
    assert data["complete"] is True
    ok = {r["backend"]: r for r in data["results"]}
    for be in ("mlx_cpu", "torch_cpu"):
        r = ok[be]
        assert r["status"] == "ok", r
        assert r["median_ms"] > 0 and r["iqr_ms"] >= 0
        assert r["calls"] == len(r["times_ms"]) >= 1
    assert common.CACHE.max_entries == 4  # the run restored the cache bound


@needs_both
def test_unavailable_backend_reported_as_skipped(tiny_run):
    reason = common.unavailable_reason("mlx_gpu")
    if reason is None:
        pytest.skip("this machine has an MLX GPU backend")
    rc, text, data, _ = tiny_run
    assert f"SKIPPED backend mlx_gpu: {reason}" in text
    assert f"mlx_gpu: skipped ({reason})" in text
    header, rows = _table_rows(text)
    cell = dict(zip(header, rows[0]))
    assert cell["mlx_gpu ms"] == "skipped"
    assert data["skipped_backends"] == {"mlx_gpu": reason}
    assert all(r["backend"] != "mlx_gpu" for r in data["results"])


def test_only_unavailable_backend_builds_nothing(monkeypatch):
    reason = common.unavailable_reason("torch_cuda")
    if reason is None:
        pytest.skip("this machine has CUDA")
    _clean_env(monkeypatch)
    monkeypatch.setattr(models, "build", lambda *a, **k: pytest.fail("built a model for a skipped backend"))
    rc, text = _main(["--backends", "torch_cuda", *TINY], monkeypatch)
    assert rc == 0
    assert f"SKIPPED backend torch_cuda: {reason}" in text
    header, rows = _table_rows(text)
    assert rows and rows[0][:3] == ["bert-base-uncased", "50", "1"]
    assert dict(zip(header, rows[0]))["torch_cuda ms"] == "skipped"


@pytest.mark.skipif(
    common.torch() is None or importlib.util.find_spec("transformers") is None,
    reason="needs torch and transformers",
)
def test_failed_case_is_reported_and_run_goes_on(monkeypatch):
    _clean_env(monkeypatch)
    real = models.Inference.time_forward

    def flaky(self, model, length, batch, backend):
        if length == 50:
            raise RuntimeError("boom\nsecond line")
        return real(self, model, length, batch, backend)

    monkeypatch.setattr(models.Inference, "time_forward", flaky)
    rc, text = _main(["--backends", "torch_cpu", "--models", "bert-base-uncased", "--lengths", "50,100",
                      "--batches", "1", "--min-calls", "2", "--min-time", "0"], monkeypatch)
    assert rc == 1
    assert re.search(r"FAILED +bert-base-uncased/50/1 on torch_cpu: RuntimeError: boom$", text, re.M), text
    assert "second line" not in text
    header, rows = _table_rows(text)
    cells = {r[1]: dict(zip(header, r)) for r in rows}
    assert cells["50"]["torch_cpu ms"] == "FAILED"
    assert float(cells["100"]["torch_cpu ms"]) > 0


def test_summary_is_in_ms():
    """The table's median and IQR are in ms, from mlx_asv/gpu/timing.py's summary."""
    assert dmt.summarize is timing.summarize and dmt.sample is timing.sample


def test_environment_records_mlx_tf32(monkeypatch):
    """MLX's GPU matmul precision is part of what a GPU table measured."""
    monkeypatch.delenv("MLX_ENABLE_TF32", raising=False)
    assert dmt.environment()["mlx_enable_tf32"].startswith("unset")
    monkeypatch.setenv("MLX_ENABLE_TF32", "0")
    env = dmt.environment()
    assert env["mlx_enable_tf32"] == "0"
    out = io.StringIO()
    dmt.print_environment(env, out)
    assert "MLX_ENABLE_TF32 0" in out.getvalue()


@needs_both
def test_budget_spent_skips_the_rest(monkeypatch):
    """Cases not begun within --budget are reported as skipped, not run."""
    _clean_env(monkeypatch)
    built = []
    monkeypatch.setattr(models, "build", lambda *a, **k: built.append(a))
    rc, text = _main(["--backends", "mlx_cpu,torch_cpu", *TINY, "--budget", "1e-9"], monkeypatch)
    mi.encoder.cache_clear()
    assert rc == 0, text
    assert built == []  # no model was built
    assert "skipped  bert-base-uncased on mlx_cpu: over --budget 1e-09 s" in text
    header, rows = _table_rows(text)
    cell = dict(zip(header, rows[0]))
    assert cell["mlx_cpu ms"] == cell["torch_cpu ms"] == "skipped"
