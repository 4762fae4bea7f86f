"""The shared benchmark layer: backends, inputs, evaluation, caching, version gates."""

import contextlib
import os

import numpy as np
import pytest

from benchmarks.lib.timing import call_seconds

from benchmarks import common
from benchmarks.common import BACKENDS, Case, CaseTable

mx = pytest.importorskip("mlx.core")
torch = pytest.importorskip("torch")


def test_backend_names():
    assert BACKENDS == ("mlx_cpu", "mlx_gpu", "mlx_gpu_compile", "torch_cpu", "torch_cuda", "torch_mps")


def test_cpu_backends_run_here_and_missing_ones_skip():
    assert common.unavailable_reason("mlx_cpu") is None
    assert common.unavailable_reason("torch_cpu") is None
    for name in BACKENDS:
        reason = common.unavailable_reason(name)
        if reason is None:
            assert isinstance(common.backend(name), common.Backend)
        else:
            # asv shows NotImplementedError from setup as "skipped", not failed
            with pytest.raises(NotImplementedError, match=name):
                common.backend(name)


def test_gpu_backends_follow_the_devices():
    has_mlx_gpu = common.mlx_gpu_kind() is not None
    assert (common.unavailable_reason("mlx_gpu") is None) == has_mlx_gpu
    assert (common.unavailable_reason("torch_cuda") is None) == torch.cuda.is_available()


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown backend 'jax_cpu'"):
        common.unavailable_reason("jax_cpu")


def test_backend_selection_by_environment(monkeypatch):
    monkeypatch.setenv(common.SELECTED_ENV, "torch_cpu")
    assert common.unavailable_reason("torch_cpu") is None
    assert "not selected" in common.unavailable_reason("mlx_cpu")


def test_inputs_are_deterministic_and_keyed():
    a = common.normal(("k", 1), (3, 4))
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a, common.normal(("k", 1), (3, 4)))
    assert not np.array_equal(a, common.normal(("k", 2), (3, 4)))
    i = common.integers("idx", (100,), 7)
    assert i.min() >= 0 and i.max() < 7 and i.dtype == np.int32


@pytest.fixture
def input_cache(tmp_path, monkeypatch):
    """An input cache folder of the test's own, caching inputs of any size."""
    folder = tmp_path / "inputs"
    monkeypatch.setenv(common.INPUT_CACHE_ENV, str(folder))
    monkeypatch.setattr(common, "INPUT_CACHE_MIN_BYTES", 0)
    return folder


def _uncached(monkeypatch, fn, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setenv(common.INPUT_CACHE_ENV, "off")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("make, args, kwargs", [
    (common.normal, (("k", 1), (30, 40)), {}),
    (common.normal, (("k", 1), (30, 40)), {"dtype": np.float16}),
    (common.uniform, ("u", (50,)), {"low": -2.0, "high": 3.0}),
    (common.integers, ("idx", (7, 9), 1000), {}),
    (common.integers, ("idx", (7, 9), 1000), {"dtype": np.int64}),
])
def test_cached_inputs_are_the_generators_bit_for_bit(input_cache, monkeypatch, make, args, kwargs):
    want = _uncached(monkeypatch, make, *args, **kwargs)
    first = make(*args, **kwargs)  # made, and written to the cache
    assert len(list(input_cache.iterdir())) == 1
    # the second call reads the file: the generator is not asked again
    monkeypatch.setattr(common, "rng", lambda *key: pytest.fail("generated again, not read from the cache"))
    second = make(*args, **kwargs)
    for got in (first, second):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_cache_keys_tell_inputs_apart(input_cache, monkeypatch):
    a = common.normal(("k", 1), (4, 5))
    b = common.normal(("k", 2), (4, 5))
    c = common.uniform(("k", 1), (4, 5))
    d = common.integers(("k", 1), (4, 5), 10)
    e = common.integers(("k", 1), (4, 5), 11)
    assert len(list(input_cache.iterdir())) == 5
    assert not np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(d, e)
    # the seed and NumPy's version are part of the name: another stream, another file
    path = common.input_cache_path(("normal", ("k", 1), (4, 5), "<f4"))
    monkeypatch.setattr(common.np, "__version__", "0.0.0")
    assert common.input_cache_path(("normal", ("k", 1), (4, 5), "<f4")) != path
    monkeypatch.undo()
    monkeypatch.setattr(common, "SEED", common.SEED + 1)
    assert common.input_cache_path(("normal", ("k", 1), (4, 5), "<f4")) != path


def test_read_only_inputs_are_memory_maps_of_the_same_bits(input_cache, monkeypatch):
    want = _uncached(monkeypatch, common.normal, ("k", 1), (30, 40))
    made = common.normal(("k", 1), (30, 40))  # made afresh: writable, even when asked read-only
    assert made.flags.writeable
    with common.read_only_inputs():
        got = common.normal(("k", 1), (30, 40))
        with common.read_only_inputs(False):
            assert common.normal(("k", 1), (30, 40)).flags.writeable
    assert isinstance(got, np.memmap) and not got.flags.writeable
    np.testing.assert_array_equal(got, want)
    assert common.normal(("k", 1), (30, 40)).flags.writeable  # the switch is off again


def test_copies_to_device_only_for_gpu_backends():
    assert not common.Backend("mlx_cpu").copies_to_device
    assert not common.Backend("torch_cpu").copies_to_device
    be = common.Backend.__new__(common.Backend)
    for name in ("mlx_gpu", "mlx_gpu_compile", "torch_cuda", "torch_mps"):
        be.name = name
        assert be.copies_to_device


def test_a_read_only_array_never_becomes_a_shared_cpu_tensor(input_cache):
    common.normal(("k", 1), (3, 4))
    with common.read_only_inputs():
        ro = common.normal(("k", 1), (3, 4))
    t = common.Backend("torch_cpu").array(ro)
    t.add_(1.0)  # a copy: writing it leaves the cache file's map alone
    np.testing.assert_array_equal(ro + np.float32(1), t.numpy())
    np.testing.assert_array_equal(common.normal(("k", 1), (3, 4)), ro)
    m = common.Backend("mlx_cpu").array(ro)
    np.testing.assert_array_equal(np.array(m), ro)


def test_device_backends_build_from_read_only_inputs(input_cache, monkeypatch):
    """ops.OpFamily.build reads the input cache read-only for a backend that
    copies to a device, and computes the same result from it."""
    from benchmarks import ops

    label = ops.Softmax.cases[0].label
    key = ("benchmarks.ops", "Softmax", label, True)
    small = ops.Softmax.case(label).small
    seen = []
    real = common.cached_input

    def spy(what, shape, dtype, make):
        arr = real(what, shape, dtype, make)
        seen.append(arr.flags.writeable)
        return arr

    monkeypatch.setattr(ops.OpFamily, "inputs", lambda self, args, key: [common.normal(key, args[0])])
    monkeypatch.setattr(common, "cached_input", spy)
    results = {}
    for copies in (False, True):
        for name in ("mlx_cpu", "torch_cpu"):
            be = common.Backend(name)
            monkeypatch.setattr(common.Backend, "copies_to_device", property(lambda self, c=copies: c))
            fn = ops.Softmax().build(be, small, key)
            results[(copies, name)] = be.to_numpy(fn())
    # the first build made the file; the read-only builds read it as a map
    assert seen == [True, True, False, False]
    for name in ("mlx_cpu", "torch_cpu"):
        np.testing.assert_array_equal(results[(True, name)], results[(False, name)])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other shape", "empty"])
def test_a_damaged_cache_file_is_made_again_with_one_line(input_cache, monkeypatch, capsys, damage):
    want = _uncached(monkeypatch, common.normal, ("k", 1), (30, 40))
    common.normal(("k", 1), (30, 40))
    (path,) = list(input_cache.iterdir())
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"not an npy file at all")
    elif damage == "other shape":
        np.save(path, np.zeros((2, 2), np.float32))
    else:
        path.write_bytes(b"")
    capsys.readouterr()
    got = common.normal(("k", 1), (30, 40))
    np.testing.assert_array_equal(got, want)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "made it again" in err[0] and "=off" in err[0]
    # and the file was replaced: the next call reads it without a word
    np.testing.assert_array_equal(np.load(path), want)
    common.normal(("k", 1), (30, 40))
    assert capsys.readouterr().err == ""


def test_an_unwritable_cache_costs_only_time(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(common.INPUT_CACHE_ENV, str(blocker / "inputs"))
    monkeypatch.setattr(common, "INPUT_CACHE_MIN_BYTES", 0)
    want = _uncached(monkeypatch, common.normal, ("k", 1), (30, 40))
    np.testing.assert_array_equal(common.normal(("k", 1), (30, 40)), want)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not write the input cache" in err[0]
    assert list(tmp_path.iterdir()) == [blocker]


def test_cache_off_and_small_inputs_write_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "inputs"
    monkeypatch.setenv(common.INPUT_CACHE_ENV, str(folder))
    common.normal(("k", 1), (30, 40))  # 4.8 kB: under INPUT_CACHE_MIN_BYTES
    assert not folder.exists()
    monkeypatch.setattr(common, "INPUT_CACHE_MIN_BYTES", 0)
    monkeypatch.setenv(common.INPUT_CACHE_ENV, "off")
    common.normal(("k", 1), (30, 40))
    assert common.input_cache_dir() is None and not folder.exists()


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(common.INPUT_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert common.input_cache_dir() == str(tmp_path / "mlx-asv" / "inputs")


def test_same_data_reaches_both_frameworks():
    x = common.normal("same", (5, 6))
    m = common.Backend("mlx_cpu").array(x)
    t = common.Backend("torch_cpu").array(x)
    np.testing.assert_array_equal(np.array(m), x)
    np.testing.assert_array_equal(t.numpy(), x)


def test_mlx_timed_callable_evaluates_its_result(monkeypatch):
    be = common.Backend("mlx_cpu")
    evaluated = []
    real_eval = mx.eval
    monkeypatch.setattr(mx, "eval", lambda *a: (evaluated.append(a), real_eval(*a))[1])
    x = be.array(np.ones((4, 4), np.float32))
    fn = be.timed(lambda a: a * 3 + 1, x)
    out = fn()
    # the *result* was passed to mx.eval, inside the callable
    assert len(evaluated) == 1 and evaluated[0][0] is out
    np.testing.assert_array_equal(np.array(out), np.full((4, 4), 4, np.float32))


def test_torch_timed_callable_synchronizes(monkeypatch):
    be = common.Backend("torch_cpu")
    synced = []
    monkeypatch.setattr(be, "synchronize", lambda: synced.append(True))
    fn = be.timed(lambda a: a + 1, be.array(np.zeros(3, np.float32)))
    assert fn().tolist() == [1, 1, 1] and synced == [True]


@pytest.mark.parametrize("be_name,module", [("torch_cuda", "cuda"), ("torch_mps", "mps")])
def test_gpu_backends_synchronize_their_device(monkeypatch, be_name, module):
    """Without a GPU: a Backend whose device is cuda / mps (made without
    Backend.__init__, which would need the device) calls that framework's
    synchronize inside the timed callable, after the op."""
    events = []
    monkeypatch.setattr(getattr(torch, module), "synchronize", lambda *a, **k: events.append("synchronize"))
    for other in {"cuda", "mps"} - {module}:
        monkeypatch.setattr(getattr(torch, other), "synchronize", lambda *a, **k: events.append(f"{other}!"))
    be = object.__new__(common.Backend)
    be.name, be.framework, be.compiled = be_name, "torch", False
    be.device = torch.device(module)
    be.synchronize()
    assert events == ["synchronize"]
    events.clear()
    fn = be.timed(lambda: events.append("op") or "result")
    assert fn() == "result"
    assert events == ["op", "synchronize"]  # the result is waited for inside the call


@pytest.mark.parametrize("be_name", ["mlx_gpu", "torch_cuda", "torch_mps"])
def test_gpu_timed_callable_time_grows_with_the_work(be_name):
    """On a GPU the timed callable waits for the work it queued: a matmul of
    8192x8192 (4096x the arithmetic of 512x512) takes clearly longer. Without
    the synchronization both would cost a kernel launch. A relative check
    within one process, not a wall-clock bound."""
    reason = common.unavailable_reason(be_name)
    if reason is not None:
        pytest.skip(f"{be_name}: {reason}")
    be = common.backend(be_name)
    small = be.timed(lambda a: a @ a, be.array(common.normal(("work", 1), (512, 512))))
    big = be.timed(lambda a: a @ a, be.array(common.normal(("work", 2), (8192, 8192))))
    t_small, t_big = min(call_seconds(small, samples=5, warmup=1)), min(call_seconds(big, samples=5, warmup=1))
    assert t_big > 8 * t_small, (t_small, t_big)


def test_state_cache_builds_once_per_key_and_is_bounded():
    cache = common.StateCache(max_entries=2)
    calls = []

    def factory(k):
        return lambda: calls.append(k) or k

    assert cache.get("a", factory("a")) == "a"
    assert cache.get("a", factory("a")) == "a"
    assert calls == ["a"]
    cache.get("b", factory("b"))
    cache.get("c", factory("c"))
    assert len(cache) == 2
    cache.get("a", factory("a"))  # evicted, built again
    assert calls == ["a", "b", "c", "a"]


def test_version_gates(monkeypatch):
    assert common.parse_version("0.26.1") == (0, 26, 1)
    assert common.parse_version("0.32.4.dev20250101+abc") == (0, 32, 4)
    common.require_mlx("0.0.1", "anything")
    monkeypatch.setattr(mx, "__version__", "0.21.1")
    with pytest.raises(NotImplementedError, match=r"mx.fast.foo needs MLX >= 0.25.0; this is 0.21.1"):
        common.require_mlx("0.25.0", "mx.fast.foo")


class Doubling(CaseTable):
    cases = (Case("dim=3", (3,), (2,)), Case("dim=5", (5,), (2,)))
    builds = 0

    def build(self, backend, args, key):
        type(self).builds += 1
        x = backend.array(common.normal(key, args))
        return backend.timed(lambda a: a * 2, x)

    def time_it(self, case, backend):
        self.fn()


def test_case_table_params_and_setup_reuses_state():
    assert Doubling.params == [["dim=3", "dim=5"], list(BACKENDS)]
    assert Doubling.param_names == ["case", "backend"]
    bench = Doubling()
    bench.setup("dim=5", "mlx_cpu")
    first = bench.fn
    built = Doubling.builds
    for _ in range(3):  # asv_runner calls setup before every sample
        bench.setup("dim=5", "mlx_cpu")
    assert bench.fn is first and Doubling.builds == built
    assert np.array(bench.fn()).shape == (5,)
    small = Doubling.callable("dim=5", "torch_cpu", small=True)
    assert tuple(small().shape) == (2,)


def test_case_table_skips_missing_backend():
    missing = [b for b in BACKENDS if common.unavailable_reason(b)]
    if not missing:
        pytest.skip("every backend is available here")
    with pytest.raises(NotImplementedError):
        Doubling().setup("dim=3", missing[0])


def test_abstract_bases_are_not_benchmarks():
    import inspect

    assert inspect.isabstract(CaseTable)
    from benchmarks import ops

    assert inspect.isabstract(ops.OpFamily)


# --------------------------------------------------------------------------
# The MLX being timed is the release the results are filed under
# --------------------------------------------------------------------------


def make_ledger(conf_dir, *commits):
    """A bare ledger repository at ``conf_dir/ledger`` with one commit per
    dict of {file name: text}, each on top of the previous; their hashes."""
    import subprocess

    git_dir = str(conf_dir / "ledger")
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t",
    )

    def git(*args, stdin=None):
        return subprocess.run(
            ["git", "--git-dir", git_dir, *args], input=stdin, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    subprocess.run(["git", "init", "-q", "--bare", git_dir], check=True)
    hashes, parent = [], []
    for files in commits:
        entries = "".join(
            f"100644 blob {git('hash-object', '-w', '--stdin', stdin=text)}\t{name}\n" for name, text in sorted(files.items())
        )
        tree = git("mktree", stdin=entries)
        commit = git("commit-tree", tree, *parent, "-m", "release", stdin="")
        hashes.append(commit)
        parent = ["-p", commit]
    return hashes


@contextlib.contextmanager
def fails(match):
    """The block raises RuntimeError itself: a failure in asv, not the
    NotImplementedError (a RuntimeError subclass) that asv shows as a skip."""
    with pytest.raises(RuntimeError, match=match) as info:
        yield info
    assert type(info.value) is RuntimeError, f"{type(info.value).__name__}: {info.value}"


@pytest.fixture
def under_asv(tmp_path, monkeypatch):
    """Make this process look like an asv benchmark process for ledger commits
    built here: ``under_asv(files)`` sets ASV_COMMIT to a commit holding ``files``."""
    monkeypatch.setenv("ASV_CONF_DIR", str(tmp_path))
    monkeypatch.delenv(common.SELECTED_ENV, raising=False)
    made = []

    def use(files):
        conf = tmp_path / f"conf{len(made)}"
        conf.mkdir()
        (commit,) = make_ledger(conf, files)
        monkeypatch.setenv("ASV_CONF_DIR", str(conf))
        monkeypatch.setenv("ASV_COMMIT", commit)
        made.append(commit)
        return commit

    return use


def test_release_mismatch_fails_with_one_line_naming_both(under_asv):
    assert mx.__version__ != "0.31.2"
    commit = under_asv({"MLX_VERSION": "0.31.2\n"})
    with fails("is installed") as info:
        common.check_mlx_release()
    message = str(info.value)
    assert "\n" not in message
    assert f"MLX {mx.__version__} is installed" in message and "filed under MLX 0.31.2" in message
    assert commit[:12] in message
    # through a benchmark's setup: a failure (RuntimeError), not a skip
    with fails("filed under MLX 0.31.2"):
        Doubling().setup("dim=3", "mlx_cpu")


def test_release_mismatch_fails_even_the_cases_that_would_skip(under_asv):
    under_asv({"MLX_VERSION": "0.31.2"})
    for name in BACKENDS:  # torch_cuda, torch_mps ... would be skipped here
        with fails("0.31.2"):
            Doubling().setup("dim=3", name)


def test_release_match_passes(under_asv):
    under_asv({"MLX_VERSION": mx.__version__ + "\n"})
    common.check_mlx_release()
    bench = Doubling()
    bench.setup("dim=3", "mlx_cpu")
    assert np.array(bench.fn()).shape == (3,)


def test_no_asv_commit_no_check(under_asv, monkeypatch):
    under_asv({"MLX_VERSION": "0.31.2"})
    monkeypatch.delenv("ASV_COMMIT")
    common.check_mlx_release()  # tests, GPU scripts: nothing to check against
    Doubling().setup("dim=3", "mlx_cpu")


def test_a_release_commit_needs_the_exact_version(under_asv, monkeypatch):
    under_asv({"MLX_VERSION": "0.32.4"})
    monkeypatch.setattr(mx, "__version__", "0.32.4.dev20250101+abc")
    with fails(r"MLX 0\.32\.4\.dev20250101\+abc is installed.*filed under MLX 0\.32\.4 "):
        common.check_mlx_release()


def test_a_candidate_commit_compares_x_y_z(under_asv, monkeypatch):
    monkeypatch.setattr(mx, "__version__", "0.32.4.dev20250101+abc")
    under_asv({"MLX_VERSION": "0.32.4", "MLX_CANDIDATE": "a build of a pull request\n"})
    common.check_mlx_release()
    under_asv({"MLX_VERSION": "0.32.3", "MLX_CANDIDATE": "x"})
    with fails(r"MLX 0\.32\.4\.dev20250101\+abc is installed.*MLX 0\.32\.3 candidate"):
        common.check_mlx_release()


def test_unreadable_ledger_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("ASV_CONF_DIR", str(tmp_path))  # no ledger there
    monkeypatch.setenv("ASV_COMMIT", "0" * 40)
    with fails("cannot check the MLX being timed"):
        common.check_mlx_release()


def test_every_benchmark_module_checks_the_release(under_asv):
    from benchmarks import fused_ops, metal_kernels, models, ops

    under_asv({"MLX_VERSION": "0.31.2"})
    setups = [
        lambda: ops.Softmax().setup(ops.Softmax.cases[0].label, "mlx_cpu"),
        lambda: fused_ops.LayerNorm().setup(fused_ops.LayerNorm.cases[0].label, "torch_cpu"),
        lambda: metal_kernels.Solve().setup(metal_kernels.Solve.cases[0].label, "torch_cpu"),
        lambda: models.Inference().setup("bert-base-uncased", 50, 1, "mlx_cpu"),
        ops.track_mlx_version,
    ]
    for setup in setups:
        with fails("filed under MLX 0.31.2"):
            setup()


def test_track_mlx_version(monkeypatch):
    from benchmarks import ops

    assert ops.track_mlx_version.unit == "version"
    assert ops.mlx_version_number("0.32.4") == pytest.approx(0.032004)
    assert ops.mlx_version_number("1.2.3") == pytest.approx(1.002003)
    monkeypatch.setattr(mx, "__version__", "0.21.1")
    assert ops.track_mlx_version() == pytest.approx(0.021001)


def _fake_mlx(version, path):
    import types
    return types.SimpleNamespace(__version__=version, __file__=path)


@pytest.mark.parametrize("version", ["0.21.1", "0.23.0", "0.28.0"])
def test_releases_that_share_the_temp_folder_get_a_jit_folder_of_their_own(tmp_path, version):
    # before 0.29.0 MLX's CPU backend keeps compiled kernels as $TMPDIR/lib<name>.so, shared by every release
    env_a, env_b, env_c = {}, {}, {}
    a = common.own_jit_folder(_fake_mlx(version, str(tmp_path / "a/mlx/core.so")), env_a)
    b = common.own_jit_folder(_fake_mlx(version, str(tmp_path / "b/mlx/core.so")), env_b)
    again = common.own_jit_folder(_fake_mlx(version, str(tmp_path / "a/mlx/core.so")), env_c)
    assert a and os.path.isdir(a) and env_a["TMPDIR"] == a and version in os.path.basename(a)
    assert b != a  # two installs of one version (a wheel and a source build, a candidate) never share
    assert again == a  # the processes of one install do: a kernel is compiled once per install


@pytest.mark.parametrize("version", ["0.29.0", "0.32.4", "0.32.4.dev20260101+abc"])
def test_releases_with_a_folder_per_version_keep_the_temp_folder(version):
    env = {}
    assert common.own_jit_folder(_fake_mlx(version, "/x/mlx/core.so"), env) is None and env == {}
