"""What every benchmark in this suite shares.

- the backend names and whether this machine (and this MLX release) has them;
- device selection, and synchronization *inside* the timed callable;
- deterministic inputs from one seeded NumPy generator, given to both frameworks;
- a module-level cache for expensive state, because asv_runner >= 0.3 runs
  ``setup`` again before every timed sample;
- version gates that skip a case on MLX releases that lack an API;
- under asv, the check that the installed MLX is the release the results are
  filed under (``check_mlx_release``: a mismatch fails every case).

A backend that is missing raises ``NotImplementedError`` from ``setup``: asv
shows the case as skipped (n/a), not failed.

Benchmark modules build their timed callables with :meth:`Backend.timed` and
the tests call exactly the same callables, so what is timed is what is checked.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
import warnings
import zlib

import numpy as np

BACKENDS = ("mlx_cpu", "mlx_gpu", "mlx_gpu_compile", "torch_cpu", "torch_cuda", "torch_mps")

# Restrict the backend parameter from the environment, e.g.
# MLX_ASV_BACKENDS=mlx_cpu,torch_cpu. The parameter list (and so asv's
# benchmark ids) stays the same; unselected backends are skipped.
SELECTED_ENV = "MLX_ASV_BACKENDS"


# --------------------------------------------------------------------------
# Framework imports: either framework may be missing (e.g. torch on a box that
# only benchmarks MLX); the backends of a missing framework are skipped.
# --------------------------------------------------------------------------


def parse_version(text):
    """'0.26.1' / '0.32.4.dev20250101+abc' -> (0, 26, 1)."""
    parts = re.findall(r"\d+", str(text).split("+")[0])[:3]
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


@functools.lru_cache(maxsize=None)
def mlx():
    """``mlx.core``, or None if MLX is not installed."""
    try:
        import mlx.core as mx
    except ImportError:
        return None
    own_jit_folder(mx)
    return mx


# MLX's CPU backend compiles the kernels of mx.compile'd graphs (which mlx.nn's
# activations are) into shared libraries in the temp folder, and loads one that
# is already there by its name. Before 0.29.0 that folder was the temp folder
# itself, shared by every release on the machine (since: TMPDIR/mlx/VERSION/cpu),
# so a process of one release could run a kernel another release had compiled:
# measured in the history of counts, where v0.23.0's Softplus counted another
# release's kernel (docs/work-verdicts.md, "The history in counts"). For those
# releases each installed MLX gets a temp folder of its own before it compiles.
JIT_FOLDER_PER_VERSION_SINCE = (0, 29, 0)


def own_jit_folder(mx, environ=os.environ):
    """Point $TMPDIR at a folder of this MLX install's own (returned), where its
    release keeps compiled kernels in the bare temp folder; else None."""
    if parse_version(mx.__version__) >= JIT_FOLDER_PER_VERSION_SINCE:
        return None
    import tempfile

    install = os.path.realpath(os.path.dirname(getattr(mx, "__file__", None) or "."))
    tag = hashlib.sha256(install.encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), "mlx-asv-jit", f"{mx.__version__}-{tag}")
    os.makedirs(folder, exist_ok=True)
    environ["TMPDIR"] = folder
    return folder


@functools.lru_cache(maxsize=None)
def torch():
    """``torch``, or None if PyTorch is not installed."""
    try:
        import torch as _torch
    except ImportError:
        return None
    return _torch


def mlx_cuda_build_installed():
    """True where the installed MLX is a CUDA build, told without importing MLX.

    The CUDA builds ship their library in a companion distribution
    (``mlx-cuda-13``, ``mlx-cuda-12``, or ``mlx-cuda`` up to 0.30.0); its
    metadata is enough, so nothing of MLX is loaded.
    """
    from importlib import metadata

    for dist in ("mlx-cuda-13", "mlx-cuda-12", "mlx-cuda"):
        try:
            metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            continue
        return True
    return False


def nvidia_driver_present():
    """True where this machine has an NVIDIA driver loaded (Linux)."""
    return os.path.exists("/proc/driver/nvidia/version")


def server_imports():
    """The frameworks asv's forkserver imports before it forks the per-case processes.

    Each of the hundreds of per-case processes forked from the server then
    starts without the imports it already holds (``import torch`` ~1 s on a
    2-core CPU box, ~4 s on the H200 machine). Forking is safe after
    ``import torch``, which does not initialize CUDA, and after importing
    MLX's CPU builds (tested here). It is not safe after MLX's CUDA build has
    initialized CUDA: a child forked from such a process crashed on an H200.
    So where MLX is a CUDA build, or an NVIDIA driver is loaded, the server
    imports torch (and NumPy) but not MLX, and each forked child imports MLX
    itself (~0.6 s there) and initializes CUDA after the fork; elsewhere (a
    Linux box without a GPU) it imports both.
    """
    if mlx_cuda_build_installed() or nvidia_driver_present():
        return ("torch",)
    return ("mlx", "torch")


class _DeferMLXImport:
    """A meta path finder for asv's forkserver on a CUDA machine: ``import mlx``
    fails there (ImportError) and is done again in each forked child.

    asv's discovery imports every module under ``benchmarks/``, and one of them
    (``lib/transformer_mlx.py``) imports MLX at module level, falling back to
    None on ImportError. Importing MLX's CUDA build initializes CUDA (measured
    on an H200 with MLX 0.30.6: a child forked after a bare ``import
    mlx.core`` died of SIGSEGV; after ``import torch`` it ran), so the server
    must not import it. The finder records the modules whose import asked for
    MLX; after the fork the child removes the finder and drops those modules,
    which its own code then imports afresh, with MLX (``_after_fork_in_child``).

    Only the import fails, not the question whether MLX is installed: the
    finder answers ``importlib.util.find_spec("mlx")`` with MLX's real
    location and a loader that refuses to load it. ``transformers`` asks that
    question when it is imported (its ``is_mlx_available``); a finder that
    raised there made ``import transformers``, and so ``models.py``, fail in
    the server, and every models.py process imported transformers again.
    """

    def __init__(self):
        self.asked_by = set()

    def find_spec(self, name, path=None, target=None):
        if name != "mlx" and not name.startswith("mlx."):
            return None
        real = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            real = finder.find_spec(name, path, target)
            if real is not None:
                break
        if real is None:
            return None  # not installed: the import fails as it would anyway
        import importlib.machinery

        package = real.submodule_search_locations is not None
        spec = importlib.machinery.ModuleSpec(name, _RefuseMLXLoader(self), origin=real.origin, is_package=package)
        if package:
            spec.submodule_search_locations = list(real.submodule_search_locations)
        return spec

    def refuse(self, name):
        """Record the module whose import asked for MLX, and fail that import."""
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module and not module.startswith(("importlib", "_frozen_importlib")) and module != __name__:
                self.asked_by.add(module)
                break
            frame = frame.f_back
        raise ImportError(
            f"{name} is not imported in asv's forkserver where MLX is a CUDA build: "
            "each forked case process imports it (benchmarks/common.py)"
        )

    def after_fork_in_child(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for name in self.asked_by:
            sys.modules.pop(name, None)
            package, _, attr = name.rpartition(".")
            if package in sys.modules and getattr(sys.modules[package], attr, None) is not None:
                delattr(sys.modules[package], attr)
        mlx.cache_clear()


class _RefuseMLXLoader:
    """The loader of ``_DeferMLXImport``'s specs: loading MLX fails (ImportError)."""

    def __init__(self, finder):
        self.finder = finder

    def create_module(self, spec):
        self.finder.refuse(spec.name)

    def exec_module(self, module):
        self.finder.refuse(module.__name__)


# --------------------------------------------------------------------------
# Where a benchmark process spends its time (studies/process_profile.py reads it)
# --------------------------------------------------------------------------

# MLX_ASV_PROFILE=FILE: every benchmark process appends one JSON line per
# event to FILE ({"t": wall clock, "pid", "ev", ...}): its fork from asv's
# forkserver, each setup call, and the phases of building a case (MLX's
# import, the ledger check, the inputs, the copy to the device, the warm-up
# call). Nothing is written, and nothing is timed differently, without it;
# events are written outside asv's timed region (setup and build only).
PROFILE_ENV = "MLX_ASV_PROFILE"
_profile_file = None


def profile_event(event, **info):
    """Append one event to $MLX_ASV_PROFILE (no-op where it is unset)."""
    global _profile_file
    path = os.environ.get(PROFILE_ENV)
    if not path:
        return
    if _profile_file is None or _profile_file[0] != os.getpid():
        _profile_file = (os.getpid(), open(path, "a", buffering=1, encoding="utf-8"))
    record = {"t": time.time(), "pid": os.getpid(), "ev": event}
    record.update(info)
    _profile_file[1].write(json.dumps(record) + "\n")


# In asv's forkserver (launch method "forkserver"), import what server_imports()
# names once, in the server; where MLX stays out of it, defer every import of
# MLX to the forked children. Under asv's default "spawn", imports stay lazy: a
# skipped backend's process does not pay for the other framework.
if len(sys.argv) > 1 and sys.argv[1] == "run_server":
    if os.environ.get(PROFILE_ENV):
        os.register_at_fork(after_in_child=lambda: profile_event("fork"))
    _SERVER_IMPORTS = server_imports()
    if "mlx" not in _SERVER_IMPORTS:
        _DEFER_MLX = _DeferMLXImport()
        sys.meta_path.insert(0, _DEFER_MLX)
        os.register_at_fork(after_in_child=_DEFER_MLX.after_fork_in_child)
    for _name in _SERVER_IMPORTS:
        {"mlx": mlx, "torch": torch}[_name]()


def mlx_version():
    mx = mlx()
    return parse_version(mx.__version__) if mx is not None else None


def require_mlx(min_version, what):
    """Version gate: skip (NotImplementedError) where MLX is older than ``min_version``.

    ``what`` names the API the case needs, so asv's log says why it skipped.
    """
    have = mlx_version()
    need = parse_version(min_version)
    if have is None:
        raise NotImplementedError("MLX is not installed")
    if have < need:
        raise NotImplementedError(
            f"{what} needs MLX >= {min_version}; this is {'.'.join(map(str, have))}"
        )


# --------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------


def _mlx_gpu_available(mx):
    # mx.is_available appeared in later releases; older Linux wheels have only
    # mx.metal, whose is_available() is False on Linux.
    if hasattr(mx, "is_available"):
        return bool(mx.is_available(mx.gpu))
    metal = getattr(mx, "metal", None)
    return bool(metal is not None and metal.is_available())


def mlx_gpu_kind():
    """'metal', 'cuda' or None: which GPU backend this MLX build runs on."""
    mx = mlx()
    if mx is None or not _mlx_gpu_available(mx):
        return None
    cuda = getattr(mx, "cuda", None)
    if cuda is not None and cuda.is_available():
        return "cuda"
    return "metal"


def unavailable_reason(name):
    """None if backend ``name`` can run here, else why not (one line)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    selected = os.environ.get(SELECTED_ENV, "").strip()
    if selected and name not in [s.strip() for s in selected.split(",")]:
        return f"not selected by {SELECTED_ENV}={selected}"
    if name.startswith("mlx"):
        mx = mlx()
        if mx is None:
            return "MLX is not installed"
        if name != "mlx_cpu" and not _mlx_gpu_available(mx):
            return f"MLX {mx.__version__} has no GPU backend on this machine"
        if name == "mlx_gpu_compile" and not hasattr(mx, "compile"):
            return f"MLX {mx.__version__} has no mx.compile"
        return None
    t = torch()
    if t is None:
        return "PyTorch is not installed"
    if name == "torch_cuda" and not t.cuda.is_available():
        return "torch has no CUDA device here"
    if name == "torch_mps":
        mps = getattr(t.backends, "mps", None)
        if mps is None or not mps.is_available():
            return "torch has no MPS device here"
    return None


class Backend:
    """One backend: which framework, which device, and how to time a call on it."""

    def __init__(self, name):
        self.name = name
        self.framework = "mlx" if name.startswith("mlx") else "torch"
        self.compiled = name == "mlx_gpu_compile"
        if self.framework == "mlx":
            mx = mlx()
            self.device = mx.cpu if name == "mlx_cpu" else mx.gpu
        else:
            t = torch()
            self.device = t.device({"torch_cpu": "cpu", "torch_cuda": "cuda", "torch_mps": "mps"}[name])

    def __repr__(self):
        return f"Backend({self.name!r})"

    @property
    def is_mlx(self):
        return self.framework == "mlx"

    def activate(self):
        """Make this backend's device the default for the code about to run."""
        if self.is_mlx:
            mlx().set_default_device(self.device)

    @property
    def copies_to_device(self):
        """True where :meth:`array` copies its input into a GPU's memory, so it
        may read a read-only memory map (``read_only_inputs``)."""
        return self.name in ("mlx_gpu", "mlx_gpu_compile", "torch_cuda", "torch_mps")

    def array(self, value):
        """A NumPy array (or scalar) as this framework's array, on this device."""
        value = np.asarray(value)
        if self.is_mlx:
            return mlx().array(value)
        value = np.ascontiguousarray(value)
        if not value.flags.writeable:
            if self.device.type == "cpu":
                return torch().from_numpy(value.copy())
            # A read-only memory map of the input cache, copied to the device
            # at once: torch's warning about non-writable arrays does not apply.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch().from_numpy(value).to(self.device)
        return torch().from_numpy(value).to(self.device)

    def arrays(self, values):
        return [self.array(v) for v in values]

    def synchronize(self):
        """Wait for queued GPU work of this backend's framework."""
        if self.is_mlx:
            return
        t = torch()
        if self.device.type == "cuda":
            t.cuda.synchronize()
        elif self.device.type == "mps":
            t.mps.synchronize()

    def evaluate(self, result):
        """Force ``result`` to be computed and finished, then return it.

        MLX is lazy: mx.eval on the *result* is what runs the graph (and waits
        for the GPU). Torch GPU work is asynchronous: synchronize the device.
        """
        if self.is_mlx:
            mlx().eval(result)
        else:
            self.synchronize()
        return result

    def timed(self, fn, *args):
        """The zero-argument callable a benchmark times and a test checks.

        Calling it computes ``fn(*args)`` on this backend and returns the
        result only once it is computed: evaluated (MLX) or synchronized
        (CUDA, MPS). For ``mlx_gpu_compile`` ``fn`` is ``mx.compile``d and
        warmed up here, outside the timed region.
        """
        self.activate()
        if self.compiled:
            fn = mlx().compile(fn)
        evaluate = self.evaluate

        def call():
            return evaluate(fn(*args))

        if self.compiled:
            call()  # trace and compile once, outside the timed region
        return call

    def to_numpy(self, result):
        """A result (array, tensor, or tuple/list of them) as NumPy, for checks."""
        if isinstance(result, (tuple, list)):
            return [self.to_numpy(r) for r in result]
        if self.is_mlx:
            mx = mlx()
            if result.dtype == mx.bfloat16:
                result = result.astype(mx.float32)
            return np.array(result)
        return result.detach().cpu().numpy()


def backend(name):
    """The backend ``name``, or NotImplementedError (asv: skipped) if it can't run here."""
    reason = unavailable_reason(name)
    if reason is not None:
        raise NotImplementedError(f"{name}: {reason}")
    return Backend(name)


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

SEED = 20240101


def rng(*key):
    """The suite's seeded NumPy generator for one case.

    Seeded from SEED and the case's key, so a case gets the same data whatever
    ran before it, in asv's per-benchmark processes and in the tests alike.
    """
    return np.random.default_rng([SEED, zlib.crc32(repr(key).encode())])


def normal(key, shape, dtype=np.float32):
    # float32 straight from the generator: half the time of float64 + astype
    # for the 10^8-element seed inputs.
    return cached_input(
        ("normal", key, tuple(shape), np.dtype(dtype).str), shape, dtype,
        lambda: rng(key, "normal", tuple(shape)).standard_normal(shape, dtype=np.float32).astype(dtype, copy=False))


def uniform(key, shape, low=0.0, high=1.0, dtype=np.float32):
    return cached_input(
        ("uniform", key, tuple(shape), low, high, np.dtype(dtype).str), shape, dtype,
        lambda: rng(key, "uniform", tuple(shape)).uniform(low, high, size=shape).astype(dtype))


def integers(key, shape, high, dtype=np.int32):
    return cached_input(
        ("integers", key, tuple(shape), high, np.dtype(dtype).str), shape, dtype,
        lambda: rng(key, "integers", tuple(shape), high).integers(0, high, size=shape).astype(dtype))


# Inputs kept on disk between processes. asv makes a case's inputs again in
# every process (a process per case per round), and the seed's largest
# inputs (1.3e8 normal floats) take 1.7-3 s to generate here but ~0.1-0.4 s
# to read back from the page cache: most of what a process of such a case
# costs. The data is the generator's, bit for bit: the file name hashes the
# generator's arguments, SEED and NumPy's version (whose streams may change).
INPUT_CACHE_ENV = "MLX_ASV_INPUT_CACHE"
# Smaller inputs are quicker to make than to read.
INPUT_CACHE_MIN_BYTES = 4 << 20


def input_cache_dir():
    """The folder of cached inputs: $MLX_ASV_INPUT_CACHE, or
    ``$XDG_CACHE_HOME/mlx-asv/inputs`` (``~/.cache``); None if the variable
    is ``off``."""
    folder = os.environ.get(INPUT_CACHE_ENV, "")
    if folder.lower() == "off":
        return None
    if folder:
        return folder
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlx-asv", "inputs")


def input_cache_path(what):
    """The cache file of the input the generator's arguments ``what`` make."""
    digest = hashlib.sha256(repr((SEED, np.__version__, what)).encode()).hexdigest()[:32]
    return os.path.join(input_cache_dir() or "", f"{digest}.npy")


_READ_ONLY_INPUTS = False


@contextlib.contextmanager
def read_only_inputs(enabled=True):
    """While active (and ``enabled``), the input cache returns its files as
    read-only memory maps (``np.load(mmap_mode="r")``) instead of reading
    them into new memory: for a backend that copies its inputs to a GPU
    anyway (``Backend.copies_to_device``), that saves a copy of up to 0.5 GB
    a process. Inputs made afresh are returned as made (writable)."""
    global _READ_ONLY_INPUTS
    before = _READ_ONLY_INPUTS
    _READ_ONLY_INPUTS = bool(enabled)
    try:
        yield
    finally:
        _READ_ONLY_INPUTS = before


def cached_input(what, shape, dtype, make):
    """``make()``, read from the input cache when it was made before.

    A file that can't be read, or holds another shape or type, is made again
    and replaced, with one line on stderr; a cache that can't be written
    (read-only, disk full) costs only the time: the input is made each time.
    """
    folder = input_cache_dir()
    if folder is None or math.prod(shape) * np.dtype(dtype).itemsize < INPUT_CACHE_MIN_BYTES:
        return make()
    path = input_cache_path(what)
    problem = None
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if _READ_ONLY_INPUTS else None)
        if arr.shape == tuple(shape) and arr.dtype == np.dtype(dtype):
            return arr
        problem = f"holds {arr.dtype}{list(arr.shape)}, not {np.dtype(dtype)}{list(shape)}"
    except (FileNotFoundError, NotADirectoryError):
        pass  # not made yet
    except (OSError, ValueError, EOFError) as e:
        problem = f"is unreadable ({type(e).__name__}: {e})"
    if problem:
        print(f"mlx-asv: input cache file {path} {problem}: made it again "
              f"({INPUT_CACHE_ENV}=off turns the cache off)", file=sys.stderr)
    arr = make()
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)  # atomic: a reader sees the whole file or none
    except OSError as e:
        print(f"mlx-asv: could not write the input cache {folder} ({e}); inputs are made in every "
              f"process (set {INPUT_CACHE_ENV} to a writable folder, or to off)", file=sys.stderr)
        try:
            os.remove(tmp)
        except OSError:
            pass
    return arr


# --------------------------------------------------------------------------
# Cache of expensive state across asv's per-sample setup calls
# --------------------------------------------------------------------------


class StateCache:
    """A small LRU of expensive state (inputs, models), keyed by parameters.

    asv runs each benchmark parameter set in a process of its own and calls
    setup before every sample, so one entry is what a benchmark reuses; the
    bound keeps a test session that walks many cases from holding them all.
    """

    def __init__(self, max_entries=4):
        self.max_entries = max_entries
        self._entries = collections.OrderedDict()
        self.builds = 0

    def get(self, key, factory):
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = factory()
        self.builds += 1
        self._entries[key] = value
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self):
        self._entries.clear()

    def __len__(self):
        return len(self._entries)


CACHE = StateCache()


def cached(key, factory):
    """``factory()`` once per key in this process (see StateCache)."""
    return CACHE.get(key, factory)


# --------------------------------------------------------------------------
# Tables of cases
# --------------------------------------------------------------------------


class Case(collections.namedtuple("Case", "label args small")):
    """One benchmark case: its label (as in the seed tables), its arguments at
    full size, and arguments of the same rank, small enough for a unit test."""


def shape_label(*shapes):
    """((64, 1000000),) -> 'dim=64x1000000', as the seed tables write shapes."""
    return " ".join("dim=" + "x".join(str(d) for d in s) for s in shapes)


class CaseTable(abc.ABC):
    """Base of a benchmark class that is a table of cases, timed on every backend.

    A subclass lists ``cases`` and implements :meth:`build`. asv sees
    ``params = [case labels, BACKENDS]``; the same :meth:`callable` serves
    the benchmark and the tests. Abstract, so asv never runs the base itself.
    """

    cases = ()
    backends = BACKENDS
    param_names = ["case", "backend"]
    # Seed-sized cases can take seconds on a 2-core CPU: allow that, but kill a
    # hung case (asv records it as failed and goes on with the rest).
    timeout = 300
    # asv's clock for these benchmarks: time.perf_counter, which injected
    # slowdowns (calibration runs only) can move on; see benchmark_clock.
    timer = staticmethod(lambda: benchmark_clock())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.cases:
            labels = [c.label for c in cls.cases]
            if len(set(labels)) != len(labels):
                raise ValueError(f"{cls.__name__}: duplicate case labels")
            cls.params = [labels, list(cls.backends)]

    @abc.abstractmethod
    def build(self, backend, args, key):
        """Return the zero-argument timed callable (use ``backend.timed``)."""

    @classmethod
    def case(cls, label):
        for c in cls.cases:
            if c.label == label:
                return c
        raise KeyError(f"{cls.__name__} has no case {label!r}")

    @classmethod
    def callable(cls, label, backend_name, small=False):
        """The timed callable of one case on one backend (cached per process).

        Under asv, first checks that the installed MLX is the release the
        results are filed under (``check_mlx_release``; a mismatch fails).
        """
        profile_event("setup", bench=cls.__name__, case=label, backend=backend_name)
        check_mlx_release()
        be = backend(backend_name)
        c = cls.case(label)
        args = c.small if small else c.args
        key = (cls.__module__, cls.__name__, label, small)

        def build():
            profile_event("build")
            fn = cls().build(be, args, key)
            profile_event("built")
            return fn

        fn = cached(key + (backend_name,), build)
        be.activate()  # the cache may hold callables of several backends
        return fn

    def setup(self, case, backend_name):
        self.fn = injected(self.callable(case, backend_name), type(self), case, backend_name)


# --------------------------------------------------------------------------
# The MLX being timed must be the release the result is filed under
# --------------------------------------------------------------------------

# asv benchmarks the commits of the release ledger (asv.conf.json's "repo",
# <ASV_CONF_DIR>/ledger) and exports the commit being benchmarked to every
# benchmark process as ASV_COMMIT. The commit's MLX_VERSION names the release
# its results are filed under; a candidate build's commit also holds
# MLX_CANDIDATE. Nothing else ties the installed MLX to that commit (an
# "existing" environment, a stale or hand-installed wheel), so every benchmark
# checks it before it builds anything: check_mlx_release().
LEDGER_DIR = "ledger"
LEDGER_VERSION_FILE = "MLX_VERSION"
LEDGER_CANDIDATE_FILE = "MLX_CANDIDATE"

# (conf dir, commit, installed version) -> None (it matches) or the error line.
_RELEASE_CHECKS = {}


def _ledger_git_dir(conf_dir):
    path = os.path.join(conf_dir, LEDGER_DIR)
    dot_git = os.path.join(path, ".git")
    return dot_git if os.path.isdir(dot_git) else path  # the ledger is bare; a clone is not


def ledger_file(conf_dir, commit, name):
    """The text of ``name`` in ledger ``commit`` (stripped), or None if the commit has no such file.

    Raises RuntimeError where the ledger or the commit cannot be read.
    """
    git = ["git", "--git-dir", _ledger_git_dir(conf_dir)]

    def run(*args):
        try:
            proc = subprocess.run(git + list(args), capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            raise RuntimeError(f"cannot read the ledger {os.path.join(conf_dir, LEDGER_DIR)}: {e}")
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"git exited {proc.returncode}"])[-1]
            raise RuntimeError(
                f"cannot read ledger commit {commit} in {os.path.join(conf_dir, LEDGER_DIR)}: {why}"
            )
        return proc.stdout

    if not run("ls-tree", "--name-only", commit, "--", name).strip():
        return None
    return run("show", f"{commit}:{name}").strip()


def _release_mismatch(environ):
    """None if the installed MLX is what ledger commit ASV_COMMIT names, else the one-line error."""
    commit = environ["ASV_COMMIT"]
    conf_dir = environ.get("ASV_CONF_DIR") or os.getcwd()
    mx = mlx()
    have = mx.__version__ if mx is not None else None
    key = (os.path.abspath(conf_dir), commit, have)
    if key not in _RELEASE_CHECKS:
        profile_event("mlx_imported")
        try:
            want = ledger_file(conf_dir, commit, LEDGER_VERSION_FILE)
            if want is None:
                raise RuntimeError(f"ledger commit {commit} has no {LEDGER_VERSION_FILE}")
            candidate = ledger_file(conf_dir, commit, LEDGER_CANDIDATE_FILE) is not None
        except RuntimeError as e:
            _RELEASE_CHECKS[key] = f"cannot check the MLX being timed against the results' release: {e}"
            return _RELEASE_CHECKS[key]
        where = f"ledger commit {commit[:12]}"
        if have is None:
            error = f"MLX is not installed, but this run is filed under MLX {want} ({where})"
        elif candidate and parse_version(have) != parse_version(want):
            error = (
                f"MLX {have} is installed, but this run is filed under the MLX {want} candidate ({where}): "
                f"its version must start with {'.'.join(map(str, parse_version(want)))}"
            )
        elif not candidate and have != want:
            error = f"MLX {have} is installed, but this run is filed under MLX {want} ({where})"
        else:
            error = None
        _RELEASE_CHECKS[key] = error
        profile_event("ledger_checked")
    return _RELEASE_CHECKS[key]


def check_mlx_release(environ=None):
    """Fail (RuntimeError, one line naming both versions) where the installed MLX
    is not the release that asv files this run's results under.

    Only under asv (ASV_COMMIT set); tests and the GPU scripts are not checked.
    A release's commit must match ``mx.__version__`` exactly; a candidate's
    commit (it holds MLX_CANDIDATE) by X.Y.Z only. Read from the ledger once
    per process. Every benchmark calls this before building anything
    (``CaseTable.callable``, ``LinalgTable.prepared``,
    ``models.forward_callable``, ``ops.track_mlx_version``), so a mismatch
    fails every case of the run: a RuntimeError, which asv records as a
    failure, not the NotImplementedError of a skip.
    """
    environ = os.environ if environ is None else environ
    if not environ.get("ASV_COMMIT"):
        return
    error = _release_mismatch(environ)
    if error is not None:
        raise RuntimeError(error)


class KernelTiming:
    """asv attributes of the kernel suites (metal_kernels.py, fused_ops.py)."""

    # A case that hangs (or a huge one on a slow CPU) fails after 5 min
    # instead of blocking the run; seed-sized CPU cases take < 1 s per call.
    timeout = 300
    # 3 to 10 samples, and no new sample after 5 s: a ~1 s CPU case costs
    # ~3 s, a 100 us GPU case gets its 10 samples at once.
    repeat = (3, 10, 5.0)
    # One call per sample: asv_runner >= 0.3 runs setup before every sample
    # anyway, and seed-sized calls are long enough to time one at a time.
    number = 1
    # One pass instead of asv's default two halves the run; 0.1 s of warmup
    # (the callables are also warmed up once when they are built).
    rounds = 1
    warmup_time = 0.1


# --------------------------------------------------------------------------
# Injected slowdowns, for tools/calibrate.py only
# --------------------------------------------------------------------------

# The calibration tool measures the verdicts' power by stretching chosen
# cases of a candidate by exact factors. The switch is honoured only where
# all of these hold, so a normal `asv run` can never reach it:
# - MLX_ASV_INJECT names a calibration id, and it came through asv's matrix
#   (``env_nobuild``): asv then puts it in the environment's name, which is in
#   every result's identity and results file name (ASV_ENV_NAME shows it);
#   asv.conf.json never sets it, only the configs tools/calibrate.py writes;
# - asv runs from the folder of the config it was given (ASV_CONF_DIR): that
#   is the calibration run's own folder ``.../calibration/<id>/`` (with its own
#   results directory), whose ``plan.json`` names the commits to stretch
#   (ASV_COMMIT): candidate twins made for the run, never a release.
INJECT_ENV = "MLX_ASV_INJECT"


def injection_plan(environ=None):
    """{case key: factor} for this benchmark process, or {} (nearly always)."""
    environ = os.environ if environ is None else environ
    run_id = environ.get(INJECT_ENV, "")
    if not run_id or INJECT_ENV not in environ.get("ASV_ENV_NAME", ""):
        return {}
    if not re.fullmatch(r"[A-Za-z0-9_-]+", run_id):
        return {}
    conf_dir = environ.get("ASV_CONF_DIR", "")
    if os.path.basename(conf_dir) != run_id or os.path.basename(os.path.dirname(conf_dir)) != "calibration":
        return {}
    path = os.path.join(conf_dir, "plan.json")
    try:
        with open(path, encoding="utf-8") as f:
            plan = json.load(f)
    except (OSError, ValueError):
        return {}
    # {commit: {case key: factor}}: a release's own commit is never in it.
    factors = plan.get("commits", {}).get(environ.get("ASV_COMMIT") or "-", {})
    return {str(k): float(v) for k, v in factors.items()}


def injection_key(cls, case, backend_name):
    """'ops.Softmax|dim=64x1000000 axis=-1|mlx_cpu': a case's key in a plan."""
    module = cls.__module__.rsplit(".", 1)[-1]
    return f"{module}.{cls.__name__}|{case}|{backend_name}"


# The clock asv times CaseTable benchmarks with (their ``timer``): the wall
# clock, plus the time injected slowdowns added. Outside calibration runs
# nothing adds to it, so it reads exactly as time.perf_counter.
_injected_seconds = 0.0


def benchmark_clock():
    return time.perf_counter() + _injected_seconds


def stretched(fn, factor):
    """``fn``, made to take exactly ``factor`` times as long on asv's clock.

    The call runs as it is; the clock then moves on by (factor - 1) times its
    duration. Stretching it in wall time instead (a spin or a sleep after the
    call) is not exact: it changes how the next call runs. Measured here on
    MLX 0.32.4, a 2x spin after each call of LeakyReLU 64x128x1024 on
    mlx_cpu made it 3.9x slower, a 1.2x one 1.33x (torch_cpu: 2.08x, 1.20x).
    """
    clock = time.perf_counter

    def call():
        global _injected_seconds
        start = clock()
        result = fn()
        _injected_seconds += (factor - 1.0) * (clock() - start)
        return result

    return call


def injected(fn, cls, case, backend_name, environ=None):
    factor = injection_plan(environ).get(injection_key(cls, case, backend_name))
    return stretched(fn, factor) if factor and factor != 1.0 else fn
