"""Tests of issue 5: benchmarks/lib/linalg_kernels.py and benchmarks/metal_kernels.py.

* the pure-MLX forms against NumPy (float64 LAPACK) on the CPU stream, with
  ill-conditioned and edge cases (n = 1, zero padding, non-contiguous input,
  batch of 1, extra batch dimensions, empty batch);
* the accuracy tracks (<= 1e-5 for the well-conditioned seeded inputs);
* the benchmark callables on small inputs against torch.linalg;
* the CUDA kernels against torch.linalg on a CUDA GPU (skipped without one),
  the Metal kernels on a Mac (skipped elsewhere);
* static checks: the Metal and CUDA sources stay mirrored, launch
  configurations stay within the limits the sources assume;
* the CUDA sources run on the CPU under a thread-per-CUDA-thread emulation
  (needs g++; skipped without it).

Run: ``python -m pytest tests/test_metal_kernels.py -q`` (``-k cuda`` for the
GPU part only).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

mx = pytest.importorskip("mlx.core")

from benchmarks.lib import linalg_kernels as lk  # noqa: E402
from benchmarks import metal_kernels as mk  # noqa: E402
from benchmarks.common import CACHE, torch  # noqa: E402

TOL = 1e-5
GEN_SEED = 1234


@pytest.fixture
def gen():
    return np.random.default_rng(GEN_SEED)


@pytest.fixture
def on_cpu():
    """Run MLX on the CPU stream (the pure-MLX forms are checked there)."""
    old = mx.default_device()
    mx.set_default_device(mx.cpu)
    yield
    mx.set_default_device(old)


def f64(x):
    return np.array(x.astype(mx.float32)).astype(np.float64)


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def frob_rel_batched(x, ref):
    x, ref = np.asarray(x), np.asarray(ref)
    num = np.sqrt(np.sum((x - ref) ** 2, axis=(-2, -1)))
    den = np.maximum(np.sqrt(np.sum(ref**2, axis=(-2, -1))), 1e-300)
    return float(np.max(num / den))


def check_qr(a, q, r, tol=TOL):
    """Shapes, exact zeros below R's diagonal, reconstruction, orthogonality."""
    m, n = a.shape[-2:]
    k = min(m, n)
    assert q.shape == a.shape[:-2] + (m, k)
    assert r.shape == a.shape[:-2] + (k, n)
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(r))
    assert np.all(np.tril(r, -1) == 0)
    assert mk.qr_reconstruction_error(a.reshape((-1, m, n)), q.reshape((-1, m, k)), r.reshape((-1, k, n))) <= tol
    assert mk.qr_orthogonality_error(q.reshape((-1, m, k))) <= tol


def spd(gen, shape):
    n = shape[-1]
    g = gen.standard_normal(shape)
    return g @ np.swapaxes(g, -1, -2) + n * np.eye(n)


def with_condition(gen, batch, n, cond):
    """Matrices U diag(logspace(0, -log10 cond)) V^T (float64)."""
    u = np.linalg.qr(gen.standard_normal((batch, n, n)))[0]
    v = np.linalg.qr(gen.standard_normal((batch, n, n)))[0]
    s = np.logspace(0, -np.log10(cond), n)
    return (u * s[None, None, :]) @ np.swapaxes(v, -1, -2)


# ---------------------------------------------------------------------------
# Pure-MLX forms against NumPy on the CPU
# ---------------------------------------------------------------------------

QR_SHAPES = [
    (1, 1, 1),
    (3, 1, 4),
    (3, 4, 1),
    (2, 5, 5),
    (4, 8, 8),
    (3, 16, 16),
    (2, 7, 4),
    (2, 4, 7),
    (1, 16, 16),  # batch of 1
    (2, 3, 6, 6),  # two batch dimensions
    (6, 6),  # a single matrix
    (1, 64, 64),
    (2, 64, 32),
    (2, 32, 64),
]


@pytest.mark.parametrize("shape", QR_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_qr_pure_mlx_matches_numpy(on_cpu, gen, shape):
    a = gen.standard_normal(shape).astype(np.float32)
    q, r = (f64(x) for x in lk.qr(mx.array(a), impl="mlx"))
    check_qr(a.astype(np.float64), q, r)
    # Same sign convention as LAPACK: R itself matches NumPy's.
    r_np = np.linalg.qr(a.astype(np.float64))[1]
    assert np.abs(r - r_np).max() <= 1e-4 * max(1.0, np.abs(r_np).max())


def test_qr_pure_mlx_ill_conditioned_and_rank_deficient(on_cpu, gen):
    a = with_condition(gen, 3, 16, 1e7).astype(np.float32)
    q, r = (f64(x) for x in lk.qr(mx.array(a), impl="mlx"))
    check_qr(a.astype(np.float64), q, r)  # Householder QR is backward stable
    b = gen.standard_normal((3, 12, 8)).astype(np.float32)
    b[:, :, 3] = b[:, :, 1]  # repeated column
    b[:, :, 5] = 0.0  # zero column
    b[1, 4:, 2] = 0.0  # nothing below the diagonal: tau = 0
    q, r = (f64(x) for x in lk.qr(mx.array(b), impl="mlx"))
    check_qr(b.astype(np.float64), q, r)


def test_qr_pure_mlx_zero_padding(on_cpu, gen):
    a = np.zeros((2, 16, 16), np.float32)
    a[:, :10, :10] = gen.standard_normal((2, 10, 10))
    q, r = (f64(x) for x in lk.qr(mx.array(a), impl="mlx"))
    check_qr(a.astype(np.float64), q, r)
    assert np.all(r[:, 10:, :] == 0)
    z = np.zeros((2, 5, 4), np.float32)
    q, r = (f64(x) for x in lk.qr(mx.array(z), impl="mlx"))
    assert np.array_equal(q, np.broadcast_to(np.eye(5, 4), q.shape)) and np.all(r == 0)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 2, 2), (4, 5, 5), (1, 16, 16), (2, 33, 33), (1, 64, 64), (2, 2, 6, 6), (7, 7)])
def test_cholesky_pure_mlx_matches_numpy(on_cpu, gen, shape):
    s = spd(gen, shape)
    l = f64(lk.cholesky(mx.array(s.astype(np.float32)), impl="mlx"))
    l_np = np.linalg.cholesky(s)
    assert l.shape == s.shape
    assert np.all(np.triu(l, 1) == 0)
    assert frob_rel_batched(l, l_np) <= TOL
    assert frob_rel_batched(l @ np.swapaxes(l, -1, -2), s) <= TOL


def test_cholesky_pure_mlx_ill_conditioned_lower_only_and_not_spd(on_cpu, gen):
    u = np.linalg.qr(gen.standard_normal((3, 16, 16)))[0]
    s = (u * np.logspace(0, -5, 16)[None, None, :]) @ np.swapaxes(u, -1, -2)  # cond 1e5
    s32 = s.astype(np.float32)
    l = f64(lk.cholesky(mx.array(s32), impl="mlx"))
    assert frob_rel_batched(l @ np.swapaxes(l, -1, -2), s32.astype(np.float64)) <= TOL
    # only the lower triangle is read
    junk = s32 + np.triu(gen.standard_normal(s32.shape).astype(np.float32), 1) * 100
    l2 = f64(lk.cholesky(mx.array(junk), impl="mlx"))
    assert np.array_equal(l, l2)
    # not positive definite: NaN (no exception)
    bad = np.array([[[1.0, 2.0], [2.0, 1.0]]], np.float32)
    assert np.isnan(f64(lk.cholesky(mx.array(bad), impl="mlx"))).any()


@pytest.mark.parametrize("n", [1, 2, 5, 16, 33, 64])
@pytest.mark.parametrize("nrhs", [1, 3])
def test_solve_pure_mlx_matches_numpy(on_cpu, gen, n, nrhs):
    a = mk.general_matrices(("test", n), (3,), n)
    b = gen.standard_normal((3, n, nrhs)).astype(np.float32)
    x = f64(lk.solve(mx.array(a), mx.array(b), impl="mlx"))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert mk.solve_residual(a64, x, b64) <= TOL
    assert frob_rel_batched(x, np.linalg.solve(a64, b64)) <= 10 * TOL
    # a batch of vectors (one dimension less than a) stays vectors
    xv = f64(lk.solve(mx.array(a), mx.array(b[..., 0]), impl="mlx"))
    assert xv.shape == (3, n)
    assert np.allclose(xv, x[..., 0], rtol=1e-5, atol=1e-6)


def test_solve_pure_mlx_pivots(on_cpu):
    # zero on the diagonal, and a tiny pivot that elimination without
    # pivoting would turn into a large error
    a = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1e-8, 1.0], [1.0, 1.0]]], np.float32)
    b = np.array([[[1.0], [2.0]], [[1.0], [2.0]]], np.float32)
    x = f64(lk.solve(mx.array(a), mx.array(b), impl="mlx"))
    x_np = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    assert np.allclose(x, x_np, rtol=1e-6, atol=1e-6)


def test_solve_pure_mlx_ill_conditioned_and_singular(on_cpu, gen):
    a = with_condition(gen, 4, 24, 1e4).astype(np.float32)
    b = gen.standard_normal((4, 24, 2)).astype(np.float32)
    x = f64(lk.solve(mx.array(a), mx.array(b), impl="mlx"))
    # as good as LAPACK's sgesv (NumPy in float32), give or take a factor
    x_lapack = np.linalg.solve(a, b).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert mk.solve_residual(a64, x, b64) <= 10 * mk.solve_residual(a64, x_lapack, b64) + 1e-6
    singular = np.zeros((1, 3, 3), np.float32)
    out = f64(lk.solve(mx.array(singular), mx.array(np.ones((1, 3, 1), np.float32)), impl="mlx"))
    assert not np.all(np.isfinite(out))  # no exception; inf/NaN as documented


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33, 64])
@pytest.mark.parametrize("upper", [False, True])
def test_solve_triangular_pure_mlx_matches_numpy(on_cpu, gen, n, upper):
    lo = mk.lower_triangular_matrices(("test", n), (3,), n)
    t = np.swapaxes(lo, -1, -2).copy() if upper else lo
    junk = np.tril(gen.standard_normal(t.shape), -1) if upper else np.triu(gen.standard_normal(t.shape), 1)
    t_junk = (t + 100 * junk).astype(np.float32)  # the other triangle is never read
    b = gen.standard_normal((3, n, 2)).astype(np.float32)
    x = f64(lk.solve_triangular(mx.array(t_junk), mx.array(b), upper=upper, impl="mlx"))
    t64, b64 = t.astype(np.float64), b.astype(np.float64)
    assert mk.solve_residual(t64, x, b64) <= TOL
    assert frob_rel_batched(x, np.linalg.solve(t64, b64)) <= TOL


def test_solve_triangular_pure_mlx_ill_conditioned(on_cpu, gen):
    # unit-scaled random triangular matrices are badly conditioned
    t = (np.tril(gen.standard_normal((3, 32, 32))) + np.eye(32)).astype(np.float32)
    b = gen.standard_normal((3, 32, 1)).astype(np.float32)
    x = f64(lk.solve_triangular(mx.array(t), mx.array(b), impl="mlx"))
    x_ref = np.linalg.solve(t, b).astype(np.float64)
    t64, b64 = t.astype(np.float64), b.astype(np.float64)
    assert mk.solve_residual(t64, x, b64) <= 10 * mk.solve_residual(t64, x_ref, b64) + 1e-6


def test_pure_mlx_non_contiguous_inputs(on_cpu, gen):
    a = gen.standard_normal((4, 12, 12)).astype(np.float32)
    view = mx.array(a).transpose(0, 2, 1)[::2]  # transposed and strided
    ref = np.ascontiguousarray(a.transpose(0, 2, 1)[::2])
    for got, want in zip(lk.qr(view, impl="mlx"), lk.qr(mx.array(ref), impl="mlx")):
        assert np.allclose(f64(got), f64(want), atol=1e-6)
    s = spd(gen, (4, 12, 12)).astype(np.float32)
    sv = mx.array(s)[::-1]
    assert np.allclose(f64(lk.cholesky(sv, impl="mlx")), np.linalg.cholesky(s[::-1].astype(np.float64)), atol=1e-4)
    g = mk.general_matrices(("nc",), (4,), 12)
    bt = gen.standard_normal((4, 3, 12)).astype(np.float32)
    x = f64(lk.solve(mx.array(g)[:, :, :], mx.array(bt).transpose(0, 2, 1), impl="mlx"))
    assert mk.solve_residual(g.astype(np.float64), x, bt.transpose(0, 2, 1).astype(np.float64)) <= TOL


def test_empty_batch(on_cpu):
    q, r = lk.qr(mx.zeros((0, 5, 3)))
    assert q.shape == (0, 5, 3) and r.shape == (0, 3, 3)
    assert lk.cholesky(mx.zeros((0, 4, 4))).shape == (0, 4, 4)
    assert lk.solve(mx.zeros((0, 4, 4)), mx.zeros((0, 4))).shape == (0, 4)
    assert lk.solve_triangular(mx.zeros((0, 4, 4)), mx.zeros((0, 4, 2))).shape == (0, 4, 2)


def test_dispatch_here():
    gpu = lk.gpu_kernel_kind()
    assert lk.choose_impl("auto", 16, 16) == (gpu or "mlx")
    assert lk.choose_impl("auto", 65, 16) == "mlx"  # too large for the kernels
    assert lk.choose_impl("mlx", 500) == "mlx"
    for kind in ("cuda", "metal"):
        if lk.kernel_api(kind) is not None:
            with pytest.raises(NotImplementedError):
                lk.choose_impl(kind, 8)
    with pytest.raises(ValueError):
        lk.choose_impl("magic", 8)


# ---------------------------------------------------------------------------
# Static checks of the kernel sources and launch configurations
# ---------------------------------------------------------------------------

CUDA_ONLY = ("__syncthreads", "__shfl", "__shared__", "threadIdx", "blockIdx", "__device__", "cooperative_groups")
METAL_ONLY = ("threadgroup_barrier", "simd_shuffle", "thread_position_in_threadgroup", "threadgroup_position_in_grid", "metal::")


def test_mirror_sources_share_body_and_structure():
    assert set(lk.CUDA_SOURCES) == set(lk.METAL_SOURCES) == set(lk.KERNEL_NAMES) == set(lk.OPS)
    assert len(set(lk.KERNEL_NAMES.values())) == len(lk.OPS)
    for op in lk.OPS:
        cuda, metal = lk.CUDA_SOURCES[op], lk.METAL_SOURCES[op]
        assert cuda.startswith(lk.CUDA_PROLOGUE) and metal.startswith(lk.METAL_PROLOGUE)
        assert cuda[len(lk.CUDA_PROLOGUE) :] == metal[len(lk.METAL_PROLOGUE) :], op
        markers = lk.structure_markers(cuda)
        assert markers == lk.structure_markers(metal)
        assert "loop" in markers and markers.count("step") >= 2, op
        assert cuda.count("{") == cuda.count("}") and cuda.count("(") == cuda.count(")")
        assert cuda.count("MLXASV_SYNC()") >= 1, op
        body = cuda[len(lk.CUDA_PROLOGUE) :]
        for token in CUDA_ONLY + METAL_ONLY:
            assert token not in body, (op, token)
        # MLX adds <input>_shape/_strides/_ndim parameters when it finds those names
        for name in lk.INPUT_NAMES[op]:
            assert not re.search(rf"\b{name}_(shape|strides|ndim)\b", body)
        for name in lk.INPUT_NAMES[op] + lk.OUTPUT_NAMES[op]:
            assert re.search(rf"\b{name}\[", body), (op, name)
    for token in METAL_ONLY:
        assert all(token not in s for s in lk.CUDA_SOURCES.values()) and token not in lk.CUDA_HEADER
    for token in CUDA_ONLY:
        assert all(token not in s for s in lk.METAL_SOURCES.values()) and token not in lk.METAL_HEADER


def test_mirror_dialects_define_the_same_helpers():
    def defined(header):
        macros = set(re.findall(r"#define (MLXASV_\w+)", header))
        funcs = re.findall(r"MLXASV_FN \w+ (mlxasv_\w+)\(([^)]*)\)", header)
        return macros, sorted(funcs)

    assert defined(lk.CUDA_DIALECT) == defined(lk.METAL_DIALECT)
    used = set(re.findall(r"\b(mlxasv_\w+|MLXASV_\w+)", "".join(lk.BODIES.values()) + lk.COMMON_HEADER))
    macros, funcs = defined(lk.CUDA_DIALECT)
    available = macros | {f for f, _ in funcs} | set(re.findall(r"(mlxasv_\w+)\(", lk.COMMON_HEADER))
    assert used <= available, used - available


def _configs():
    for m in range(1, 65):
        for n in range(1, 65):
            yield "qr", lk.qr_config(m, n)
        for batch in (1, 3, 4, 500, 1024):
            yield "cholesky", lk.cholesky_config(m, batch)
        for nrhs in (1, 2, 7, 33):
            yield "solve", lk.solve_config(m, nrhs)
            for batch in (1, 6, 200):
                yield "solve_triangular", lk.trsv_config(m, nrhs, m % 2 == 0, batch)


def test_launch_configs_within_source_assumptions():
    for op, cfg in _configs():
        nt = cfg["NTHREADS"]
        assert nt % 32 == 0 and 32 <= nt <= 512, (op, cfg)  # full warps: legal full-mask shuffles
        rows = cfg.get("M", cfg["N"])
        if "LANES" in cfg:
            lanes = cfg["LANES"]
            assert lanes & (lanes - 1) == 0 and lanes <= (32 if "RPL" in cfg else 64) and nt % lanes == 0
            if "RPL" in cfg:
                assert lanes * cfg["RPL"] >= rows and cfg["RPL"] <= 2
            else:  # one row per thread, one group (<= 32) or block (64) per matrix
                assert rows <= lanes <= 64 and lanes * cfg["MPB"] <= nt
                assert lanes <= 32 or (cfg["MPB"] == 1 and nt == lanes)
        if "TX" in cfg:
            assert cfg["TX"] & (cfg["TX"] - 1) == 0 and nt % cfg["TX"] == 0
        # Metal's limit is 32 KB of threadgroup memory; CUDA's static one 48 KB
        assert lk.shared_memory_bytes(op, cfg) <= 32 * 1024, (op, cfg)
    assert lk.qr_config(16, 16) == {"M": 16, "N": 16, "K": 16, "LANES": 16, "RPL": 1, "NTHREADS": 256}


# ---------------------------------------------------------------------------
# The CUDA sources, run on the CPU: one std::thread per CUDA thread
# ---------------------------------------------------------------------------

EMU_SHIM = r"""
#include <barrier>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
namespace cooperative_groups {}
struct EmuDim { int x, y, z; };
thread_local EmuDim threadIdx;
EmuDim blockIdx;
std::barrier<>* emu_block;
std::barrier<>* emu_warp[16];
float emu_f[512];
int emu_i[512];
inline void __syncthreads() { emu_block->arrive_and_wait(); }
template <typename T> T emu_xchg(T* buf, T v, int src) {
  const int t = threadIdx.x, w = t / 32;
  buf[t] = v;
  emu_warp[w]->arrive_and_wait();
  T r = buf[w * 32 + (src & 31)];
  emu_warp[w]->arrive_and_wait();
  return r;
}
inline float __shfl_xor_sync(unsigned, float v, int o) { return emu_xchg(emu_f, v, (threadIdx.x & 31) ^ o); }
inline int __shfl_xor_sync(unsigned, int v, int o) { return emu_xchg(emu_i, v, (threadIdx.x & 31) ^ o); }
inline float __shfl_sync(unsigned, float v, int src) { return emu_xchg(emu_f, v, src); }
"""


def emulate_source(source, header, input_names, output_names, template, inputs, out_shapes, workdir, nthreads, nblocks=None):
    """Build the translation unit MLX's cuda_kernel builds from these arguments
    (MLX's device header replaced by the shim above), run it block after
    block on the CPU, return the outputs as float64 NumPy."""
    params = [f"const float* {n}" for n in input_names] + [f"float* {n}" for n in output_names]
    consts = "".join(
        f"  constexpr {'bool' if isinstance(v, bool) else 'int'} {k} = {str(v).lower()};\n" for k, v in template
    )
    src = EMU_SHIM + header + "namespace mlx::core::cu {\nnamespace cg = cooperative_groups;\n"
    src += f"__global__ void kern({', '.join(params)}) {{\n{consts}\n{source}\n}}\n}}\n"
    nt = nthreads
    batch = nblocks if nblocks is not None else (inputs[0].shape[0] if inputs[0].ndim else 1)
    args = [f"in{i}.data()" for i in range(len(inputs))] + [f"out{i}.data()" for i in range(len(out_shapes))]
    src += "int main() {\n"
    for i, x in enumerate(inputs):
        src += f"  std::vector<float> in{i}({x.size}); FILE* f{i} = fopen(\"in{i}.bin\", \"rb\");"
        src += f" if (fread(in{i}.data(), 4, {x.size}, f{i}) != {x.size}) return 2; fclose(f{i});\n"
    for i, s in enumerate(out_shapes):
        src += f"  std::vector<float> out{i}({int(np.prod(s))}, NAN);\n"
    src += f"  emu_block = new std::barrier<>({nt});\n  for (int w = 0; w < {nt // 32}; ++w) emu_warp[w] = new std::barrier<>(32);\n"
    src += f"  for (int b = 0; b < {batch}; ++b) {{\n    blockIdx.x = b; std::vector<std::thread> ts;\n"
    src += f"    for (int t = 0; t < {nt}; ++t) ts.emplace_back([&, t] {{ threadIdx.x = t; mlx::core::cu::kern({', '.join(args)}); }});\n"
    src += "    for (auto& th : ts) th.join();\n  }\n"
    for i, s in enumerate(out_shapes):
        src += f"  FILE* g{i} = fopen(\"out{i}.bin\", \"wb\"); fwrite(out{i}.data(), 4, {int(np.prod(s))}, g{i}); fclose(g{i});\n"
    src += "  return 0;\n}\n"
    d = os.path.join(workdir, hashlib.sha1(src.encode()).hexdigest()[:12])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "k.cpp"), "w") as fh:
        fh.write(src)
    subprocess.run(["g++", "-std=c++20", "-O1", "-pthread", "-w", "k.cpp", "-o", "k"], cwd=d, check=True)
    for i, x in enumerate(inputs):
        np.ascontiguousarray(x, np.float32).tofile(os.path.join(d, f"in{i}.bin"))
    subprocess.run(["./k"], cwd=d, check=True, timeout=120)
    return [np.fromfile(os.path.join(d, f"out{i}.bin"), np.float32).reshape(s).astype(np.float64) for i, s in enumerate(out_shapes)]


def emulate(op, cfg, inputs, out_shapes, workdir):
    return emulate_source(
        lk.CUDA_SOURCES[op], lk.CUDA_HEADER, lk.INPUT_NAMES[op], lk.OUTPUT_NAMES[op],
        list(cfg.items()), inputs, out_shapes, workdir, cfg["NTHREADS"],
        lk.num_blocks(cfg, inputs[0].shape[0]),
    )


def _gxx_cxx20():
    return shutil.which("g++") is not None


@pytest.mark.skipif(not _gxx_cxx20(), reason="g++ (C++20) is needed to emulate the CUDA sources on the CPU")
def test_emulated_kernel_sources(tmp_path, gen):
    """The exact CUDA source strings, run on the CPU, agree with NumPy.

    Small shapes chosen to cover: one lane per row group (LANES 1), partial
    groups, two rows per lane (RPL 2), 512-thread blocks, tall/wide QR, zero
    columns, pivoting, upper and lower substitution, several right-hand sides.
    """
    a = gen.standard_normal((2, 5, 3)).astype(np.float32)
    a[1, :, 0] = 0.0
    q, r = emulate("qr", lk.qr_config(5, 3), [a], [(2, 5, 3), (2, 3, 3)], tmp_path)
    check_qr(a.astype(np.float64), q, r)
    a = gen.standard_normal((1, 3, 40)).astype(np.float32)
    q, r = emulate("qr", lk.qr_config(3, 40), [a], [(1, 3, 3), (1, 3, 40)], tmp_path)
    check_qr(a.astype(np.float64), q, r)
    a = gen.standard_normal((1, 40, 9)).astype(np.float32)
    q, r = emulate("qr", lk.qr_config(40, 9), [a], [(1, 40, 9), (1, 9, 9)], tmp_path)
    check_qr(a.astype(np.float64), q, r)
    assert np.abs(r - np.linalg.qr(a.astype(np.float64))[1]).max() < 1e-4

    # Cholesky: two groups per block (MPB 2, LANES 16), an odd batch (MPB 1,
    # an idle half warp), a 64-thread block with the shared column (n > 32)
    for batch, n in ((2, 9), (3, 5), (2, 37)):
        s = spd(gen, (batch, n, n)).astype(np.float32)
        s_junk = s + np.triu(gen.standard_normal(s.shape), 1).astype(np.float32) * 100  # upper never read
        cfg = lk.cholesky_config(n, batch)
        (l,) = emulate("cholesky", cfg, [s_junk], [(batch, n, n)], tmp_path)
        assert np.all(np.triu(l, 1) == 0), cfg
        assert frob_rel_batched(l, np.linalg.cholesky(s.astype(np.float64))) <= TOL, cfg

    g = mk.general_matrices(("emu",), (2,), 37)
    b = gen.standard_normal((2, 37, 2)).astype(np.float32)
    (x,) = emulate("solve", lk.solve_config(37, 2), [g, b], [(2, 37, 2)], tmp_path)
    assert mk.solve_residual(g.astype(np.float64), x, b.astype(np.float64)) <= TOL
    for batch, n, nrhs in ((2, 37, 2), (4, 7, 3), (3, 16, 1)):
        lo = mk.lower_triangular_matrices(("emu", n), (batch,), n)
        bt = gen.standard_normal((batch, n, nrhs)).astype(np.float32)
        for upper in (False, True):
            t = np.swapaxes(lo, -1, -2).copy() if upper else lo
            junk = np.tril(gen.standard_normal(t.shape), -1) if upper else np.triu(gen.standard_normal(t.shape), 1)
            cfg = lk.trsv_config(n, nrhs, upper, batch)
            (x,) = emulate("solve_triangular", cfg, [(t + 100 * junk).astype(np.float32), bt], [(batch, n, nrhs)], tmp_path)
            assert mk.solve_residual(t.astype(np.float64), x, bt.astype(np.float64)) <= TOL, cfg


# The keyword arguments of mx.fast.cuda_kernel and of the kernel it returns,
# as MLX 0.29-0.32 define them (python/src/fast.cpp).
CUDA_KERNEL_ARGS = {"name", "input_names", "output_names", "source", "header", "ensure_row_contiguous", "shared_memory"}
CUDA_CALL_REQUIRED = {"inputs", "output_shapes", "output_dtypes", "grid", "threadgroup"}
CUDA_CALL_OPTIONAL = {"template", "init_value", "verbose", "stream"}


@pytest.mark.skipif(not _gxx_cxx20(), reason="g++ (C++20) is needed to emulate the CUDA sources on the CPU")
def test_emulated_cuda_dispatch_end_to_end(tmp_path, gen, monkeypatch, on_cpu):
    """qr/cholesky/solve/solve_triangular(impl="cuda") through a stand-in for
    mx.fast.cuda_kernel that checks the arguments against MLX's signature and
    runs what it is given under the CPU emulation: the Python side of the
    CUDA path (shapes, batch dims, vector right-hand sides, template lists,
    grid in threads) without a GPU."""
    calls = []

    def fake_cuda_kernel(**kw):
        assert set(kw) <= CUDA_KERNEL_ARGS and {"name", "input_names", "output_names", "source"} <= set(kw)

        def call(**ck):
            assert CUDA_CALL_REQUIRED <= set(ck) <= CUDA_CALL_REQUIRED | CUDA_CALL_OPTIONAL, set(ck)
            grid, group = ck["grid"], ck["threadgroup"]
            assert grid[1:] == (1, 1) and group[1:] == (1, 1) and grid[0] % group[0] == 0
            names = [k for k, _ in ck["template"]]
            assert all(re.search(rf"\b{n}\b", kw["source"]) for n in names), names
            assert all(d == mx.float32 for d in ck["output_dtypes"])
            inputs = [np.array(x) for x in ck["inputs"]]
            calls.append((kw["name"], ck["template"]))
            outs = emulate_source(
                kw["source"], kw.get("header", ""), kw["input_names"], kw["output_names"], ck["template"],
                inputs, [tuple(s) for s in ck["output_shapes"]], tmp_path, group[0], grid[0] // group[0],
            )
            return [mx.array(o.astype(np.float32)) for o in outs]

        return call

    monkeypatch.setattr(mx.fast, "cuda_kernel", fake_cuda_kernel, raising=False)
    monkeypatch.setattr(lk, "kernel_api", lambda kind: None if kind == "cuda" else "not here")
    lk._kernel.cache_clear()
    try:
        a = gen.standard_normal((6, 4)).astype(np.float32)  # a single matrix
        q, r = (f64(x) for x in lk.qr(mx.array(a)))  # impl="auto" picks the kernel
        assert calls[-1][0] == "mlxasv_qr"
        check_qr(a[None].astype(np.float64), q[None], r[None])
        s = mk.spd_matrices(("wire",), (2, 1), 6)  # two batch dimensions
        l = f64(lk.cholesky(mx.array(s), impl="cuda"))
        assert l.shape == (2, 1, 6, 6)
        assert frob_rel_batched(l.reshape(2, 6, 6), np.linalg.cholesky(s.reshape(2, 6, 6).astype(np.float64))) <= TOL
        g = mk.general_matrices(("wire",), (3,), 5)
        bv = gen.standard_normal((3, 5)).astype(np.float32)  # vector right-hand sides
        x = f64(lk.solve(mx.array(g), mx.array(bv), impl="cuda"))
        assert x.shape == (3, 5)
        assert mk.solve_residual(g.astype(np.float64), x[..., None], bv[..., None].astype(np.float64)) <= TOL
        up = np.swapaxes(mk.lower_triangular_matrices(("wire",), (2,), 5), -1, -2).copy()
        b = gen.standard_normal((2, 5, 3)).astype(np.float32)
        x = f64(lk.solve_triangular(mx.array(up), mx.array(b), upper=True, impl="cuda"))
        assert mk.solve_residual(up.astype(np.float64), x, b.astype(np.float64)) <= TOL
        assert ("UPPER", True) in calls[-1][1]
        assert [c[0] for c in calls] == ["mlxasv_qr", "mlxasv_cholesky", "mlxasv_lu_solve", "mlxasv_trsv"]
    finally:
        lk._kernel.cache_clear()


# ---------------------------------------------------------------------------
# Benchmarks: asv parameters, skips, accuracy tracks, agreement with torch
# ---------------------------------------------------------------------------


def test_asv_params_and_skips():
    for cls in mk.LINALG_CLASSES:
        assert cls.params == [[c.label for c in cls.cases], list(mk.IMPLEMENTATIONS)]
        assert cls.param_names == ["case", "implementation"]
        assert any(n.startswith("time_") for n in dir(cls)) and any(n.startswith("track_") for n in dir(cls))
    with pytest.raises(NotImplementedError, match="seconds"):
        mk.implementation("ours_mlx_cpu", "qr", (4000, 1000))
    if lk.gpu_kernel_kind() is not None:
        with pytest.raises(NotImplementedError, match="up to 64"):
            mk.implementation("ours_mlx_gpu", "qr", (128, 128))
    else:
        with pytest.raises(NotImplementedError):
            mk.implementation("ours_mlx_gpu", "qr", (16, 16))
    with pytest.raises(ValueError):
        mk.implementation("numpy", "qr", (4, 4))
    if torch() is None or not torch().cuda.is_available():
        with pytest.raises(NotImplementedError):
            mk.Solve.prepared(mk.Solve.cases[0].label, "torch_cuda", small=True)
    try:
        import metalcore  # noqa: F401
    except ImportError:
        with pytest.raises(NotImplementedError):
            mk.Cholesky.prepared(mk.Cholesky.cases[0].label, "metalcore", small=True)


@pytest.mark.parametrize("error", (AttributeError, TypeError, ValueError, RuntimeError), ids=lambda e: e.__name__)
def test_an_error_from_mlx_linalg_is_a_failure_not_a_skip(monkeypatch, error):
    """An error raised by mx.linalg surfaces as that error (asv: failed), not
    as NotImplementedError (asv: skipped)."""

    def broken(*args, **kwargs):
        raise error("injected")

    monkeypatch.setattr(mx.linalg, "cholesky", broken)
    CACHE.clear()  # build afresh: the callable is called when it is built
    with pytest.raises(error, match="injected") as info:
        mk.Cholesky.prepared(mk.Cholesky.cases[0].label, "mlx_linalg_cpu", small=True)
    assert type(info.value) is error
    CACHE.clear()


@pytest.mark.skipif(torch() is None, reason="PyTorch is not installed")
def test_an_error_from_metalcore_is_a_failure_not_a_skip(monkeypatch):
    """The metalcore adapter: a package that imports but fails surfaces its
    error. (A stand-in metalcore module, on torch's CPU device.)"""
    import types

    fake = types.ModuleType("metalcore")

    def cholesky(a):
        raise TypeError("injected")

    fake.cholesky = cholesky
    monkeypatch.setitem(sys.modules, "metalcore", fake)
    real_backend = mk.backend
    monkeypatch.setattr(mk, "backend", lambda name: real_backend("torch_cpu"))  # torch_mps -> CPU
    CACHE.clear()
    with pytest.raises(TypeError, match="injected"):
        mk.Cholesky.prepared(mk.Cholesky.cases[0].label, "metalcore", small=True)
    CACHE.clear()


def _available(cls, label, small):
    for impl in mk.IMPLEMENTATIONS:
        try:
            yield impl, cls.prepared(label, impl, small=small)
        except NotImplementedError:
            continue


# Full-size cases whose accuracy tracks are checked here: every seed case but
# the single QRs above 512x512 (seconds each on a small CPU).
FULL_TRACK_CASES = [
    (cls, c.label)
    for cls in mk.LINALG_CLASSES
    for c in cls.cases
    if cls is not mk.QRSingle or np.prod(c.args[0]) <= 512 * 512
]


@pytest.mark.parametrize(
    "cls,label,small",
    [(cls, c.label, True) for cls in mk.LINALG_CLASSES for c in cls.cases[::3]]
    + [(cls, label, False) for cls, label in FULL_TRACK_CASES],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_accuracy_tracks_well_conditioned(cls, label, small):
    seen = 0
    for impl, _ in _available(cls, label, small):
        bench = cls()
        bench.prep = cls.prepared(label, impl, small=small)
        values = {n: getattr(bench, n)(label, impl) for n in dir(cls) if n.startswith("track_")}
        assert values and all(0 <= v <= TOL for v in values.values()), (impl, values)
        seen += 1
    assert seen >= 3  # ours_mlx_cpu, mlx_linalg_cpu, torch_cpu at least
    CACHE.clear()


def _compare(cls, got, want):
    if cls.op == "qr":
        for g, w in zip(got, want):
            assert np.allclose(g, w, rtol=1e-4, atol=1e-4)
    else:
        assert frob_rel_batched(_as3(got), _as3(want)) <= 1e-4


def _as3(x):
    return x if x.ndim >= 3 else x[None]


@pytest.mark.skipif(torch() is None, reason="PyTorch is not installed")
@pytest.mark.parametrize(
    "cls,label", [(cls, c.label) for cls in mk.LINALG_CLASSES for c in cls.cases],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_linalg_callables_agree_with_torch(cls, label):
    want = cls.prepared(label, "torch_cpu", small=True).result()
    for impl in ("ours_mlx_cpu", "mlx_linalg_cpu"):
        _compare(cls, cls.prepared(label, impl, small=True).result(), want)
    CACHE.clear()


# ---------------------------------------------------------------------------
# GPU kernels (skipped without the GPU)
# ---------------------------------------------------------------------------

CUDA_REASON = lk.kernel_api("cuda")
METAL_REASON = lk.kernel_api("metal")
needs_cuda = pytest.mark.skipif(CUDA_REASON is not None, reason=f"no CUDA kernels here: {CUDA_REASON}")
needs_metal = pytest.mark.skipif(METAL_REASON is not None, reason=f"no Metal kernels here: {METAL_REASON}")
needs_torch_cuda = pytest.mark.skipif(
    torch() is None or not torch().cuda.is_available(), reason="torch has no CUDA device here"
)

GPU_QR = [(1, 1, 1), (3, 5, 3), (3, 3, 5), (7, 8, 8), (2, 17, 9), (500, 16, 16), (3, 32, 32), (2, 48, 48), (3, 64, 32), (3, 32, 64), (2, 64, 64)]
GPU_SQ = [(1, 1, 1), (1, 16, 16), (4, 5, 5), (500, 16, 16), (3, 33, 33), (200, 48, 48), (2, 64, 64)]


def _gpu_qr(kind, shape, gen):
    a = gen.standard_normal(shape).astype(np.float32)
    if shape[0] > 1 and shape[1] > 2:
        a[-1, :, 0] = 0.0
        a[-1, 2:, 1] = 0.0
    q, r = (f64(x) for x in lk.qr(mx.array(a), impl=kind))
    check_qr(a.astype(np.float64), q, r)
    return a, r


def _gpu_cholesky(kind, shape):
    s = mk.spd_matrices(("gpu", shape), shape[:-2], shape[-1])
    l = f64(lk.cholesky(mx.array(s), impl=kind))
    assert frob_rel_batched(l @ np.swapaxes(l, -1, -2), s.astype(np.float64)) <= TOL
    assert np.all(np.triu(l, 1) == 0)
    return s, l


def _gpu_solves(kind, shape, gen, nrhs=2):
    n = shape[-1]
    a = mk.general_matrices(("gpu", shape), shape[:-2], n)
    b = gen.standard_normal(shape[:-1] + (nrhs,)).astype(np.float32)
    x = f64(lk.solve(mx.array(a), mx.array(b), impl=kind))
    assert mk.solve_residual(a.astype(np.float64), x, b.astype(np.float64)) <= TOL
    lo = mk.lower_triangular_matrices(("gpu", shape), shape[:-2], n)
    xs = {}
    for upper in (False, True):
        t = np.swapaxes(lo, -1, -2).copy() if upper else lo
        xs[upper] = f64(lk.solve_triangular(mx.array(t), mx.array(b), upper=upper, impl=kind))
        assert mk.solve_residual(t.astype(np.float64), xs[upper], b.astype(np.float64)) <= TOL
    return a, b, x, lo, xs


@needs_cuda
@needs_torch_cuda
@pytest.mark.parametrize("shape", GPU_QR, ids=lambda s: "x".join(map(str, s)))
def test_cuda_qr_kernel_vs_torch(gen, shape):
    a, r = _gpu_qr("cuda", shape, gen)
    t = torch()
    r_t = t.linalg.qr(t.from_numpy(a).cuda())[1].cpu().double().numpy()
    assert np.abs(r - r_t).max() <= 1e-4 * max(1.0, np.abs(r_t).max())


@needs_cuda
@needs_torch_cuda
@pytest.mark.parametrize("shape", GPU_SQ, ids=lambda s: "x".join(map(str, s)))
def test_cuda_cholesky_and_solve_kernels_vs_torch(gen, shape):
    t = torch()
    s, l = _gpu_cholesky("cuda", shape)
    l_t = t.linalg.cholesky(t.from_numpy(s).cuda()).cpu().double().numpy()
    assert frob_rel_batched(l, l_t) <= TOL
    a, b, x, lo, xs = _gpu_solves("cuda", shape, gen)
    x_t = t.linalg.solve(t.from_numpy(a).cuda(), t.from_numpy(b).cuda()).cpu().double().numpy()
    assert frob_rel_batched(x, x_t) <= 1e-4
    x_t = t.linalg.solve_triangular(t.from_numpy(lo).cuda(), t.from_numpy(b).cuda(), upper=False)
    assert frob_rel_batched(xs[False], x_t.cpu().double().numpy()) <= 1e-4


@needs_cuda
def test_cuda_kernels_edge_cases(gen):
    # non-contiguous input, zero matrix, vector right-hand side, batch dims
    a = gen.standard_normal((4, 16, 16)).astype(np.float32)
    q, r = (f64(x) for x in lk.qr(mx.array(a).transpose(0, 2, 1), impl="cuda"))
    check_qr(np.ascontiguousarray(a.transpose(0, 2, 1)).astype(np.float64), q, r)
    q, r = (f64(x) for x in lk.qr(mx.zeros((2, 6, 4)), impl="cuda"))
    assert np.array_equal(q, np.broadcast_to(np.eye(6, 4), q.shape)) and np.all(r == 0)
    a = mk.general_matrices(("edge",), (2, 3), 12)
    bv = gen.standard_normal((2, 3, 12)).astype(np.float32)
    x = f64(lk.solve(mx.array(a), mx.array(bv), impl="cuda"))
    assert x.shape == (2, 3, 12)
    assert mk.solve_residual(a.reshape(6, 12, 12).astype(np.float64), x.reshape(6, 12, 1), bv.reshape(6, 12, 1)) <= TOL
    # a pure-MLX and a kernel result agree
    s = mk.spd_matrices(("edge",), (3,), 20)
    assert np.allclose(f64(lk.cholesky(mx.array(s), impl="cuda")), f64(lk.cholesky(mx.array(s), impl="mlx")), atol=1e-5)


@needs_cuda
@needs_torch_cuda
@pytest.mark.parametrize(
    "cls,label", [(cls, c.label) for cls in mk.LINALG_CLASSES for c in cls.cases[:3]],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_cuda_benchmark_callables_vs_torch_cuda(cls, label):
    want = cls.prepared(label, "torch_cuda", small=True).result()
    got = cls.prepared(label, "ours_mlx_gpu", small=True).result()
    _compare(cls, got, want)
    bench = cls()
    bench.prep = cls.prepared(label, "ours_mlx_gpu")  # full size
    values = {n: getattr(bench, n)(label, "ours_mlx_gpu") for n in dir(cls) if n.startswith("track_")}
    assert all(v <= TOL for v in values.values()), values
    CACHE.clear()


@needs_cuda
def test_cuda_gpu_stream_runs_the_pure_mlx_forms(gen):
    """ours_mlx_gpu_composed: the pure-MLX forms on the GPU stream agree with the CPU stream."""
    a = gen.standard_normal((5, 12, 9)).astype(np.float32)
    s = mk.spd_matrices(("gpu-pure",), (5,), 12)
    g = mk.general_matrices(("gpu-pure",), (5,), 12)
    b = gen.standard_normal((5, 12, 2)).astype(np.float32)

    def run_all(device):
        mx.set_default_device(device)
        try:
            outs = list(lk.qr(mx.array(a), impl="mlx")) + [
                lk.cholesky(mx.array(s), impl="mlx"),
                lk.solve(mx.array(g), mx.array(b), impl="mlx"),
                lk.solve_triangular(mx.array(np.tril(s)), mx.array(b), impl="mlx"),
            ]
            return [f64(o) for o in outs]
        finally:
            mx.set_default_device(mx.gpu)

    for got, want in zip(run_all(mx.gpu), run_all(mx.cpu)):
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_metal
@pytest.mark.parametrize("shape", GPU_QR, ids=lambda s: "x".join(map(str, s)))
def test_metal_qr_kernel(gen, shape):
    _gpu_qr("metal", shape, gen)


@needs_metal
@pytest.mark.parametrize("shape", GPU_SQ, ids=lambda s: "x".join(map(str, s)))
def test_metal_cholesky_and_solve_kernels(gen, shape):
    s, l = _gpu_cholesky("metal", shape)
    assert frob_rel_batched(l, np.linalg.cholesky(s.astype(np.float64))) <= TOL
    _gpu_solves("metal", shape, gen)
