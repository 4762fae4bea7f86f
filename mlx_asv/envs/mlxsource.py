"""MLX from source: read MLX's git history, and build one MLX commit into a wheel.

Used by ``tools/ledger.py`` (source mode: MLX's real commits between two
releases, or a pull request's head, as ledger commits) and by
``tools/install.py`` (a ledger commit without a wheel is built here, once,
into ``~/.cache/mlx-asv/wheels/<sha>/<python-platform>/``).

What a build of MLX commit C does (``build_wheel``):

1. the cache: a wheel already built for C and this interpreter is reused;
2. the plan, from C's own files (``build_plan``, a pure function): the
   version C says (``setup.py``'s ``get_version("X.Y.Z")`` or
   ``mlx/version.h``), the build requirements of its ``pyproject.toml``
   (nanobind 2.2.0 before f110357aa = v0.22.0~40, 2.4.0 from it on; later
   commits fetch nanobind with CMake), the CMake it needs, its CMake
   FetchContent dependencies, and the CMake arguments:
   - ``CMAKE_BUILD_TYPE=Release``; ccache as the compiler launcher where it
     is installed;
   - ``BLA_VENDOR=Generic`` on Linux: the reference BLAS/LAPACK, which MLX's
     released Linux wheels link (``MLX_ASV_BLAS=openblas|auto`` changes it);
   - where ``python/src/CMakeLists.txt`` links the module with the macOS-only
     ``@loader_path/lib`` rpath (every commit before a5ac9244c = v0.26.2~50):
     ``CMAKE_SKIP_BUILD_RPATH=ON``, ``CMAKE_BUILD_WITH_INSTALL_RPATH=ON``,
     ``CMAKE_INSTALL_RPATH=$ORIGIN/lib`` on Linux, so the wheel finds its own
     ``lib/libmlx.so`` and not the deleted build tree;
   - local copies of the FetchContent dependencies (json 3.11.3, fmt 10.2.1,
     gguf-tools, nanobind for the newest commits), when all are in
     ``~/.cache/mlx-asv/fetchcontent/<name>-<tag>/``:
     ``FETCHCONTENT_SOURCE_DIR_<NAME>=...`` and
     ``FETCHCONTENT_FULLY_DISCONNECTED=ON`` (offline builds);
   - ``PYPI_RELEASE=1`` in the environment: the version is then plain X.Y.Z
     (otherwise a date and git hash, which 0.22.0-0.23.2 compile into every
     file, defeating ccache; and ``git rev-parse`` fails in an exported tree);
3. the toolchain check, before anything is built (``check_toolchain``): a C++
   compiler, CMake new enough (or the registry's ``cmake`` in the build
   environment), the BLAS/LAPACK headers on Linux; a missing one ends the
   build in one line that names it and the package to install;
4. the source at C exported with ``git archive`` into a fixed folder (so that
   ccache sees the same paths from one commit to the next), the build
   requirements installed once into a cached build environment, and
   ``pip wheel --no-build-isolation --no-deps``; its log is kept beside the
   wheel (``build.log``), and ``build.json`` records what was built how.

Nothing here downloads MLX: the source is a local clone or git directory;
a URL is mirrored once into ``~/.cache/mlx-asv/repos/`` (``mirror``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

CACHE_ENV = "MLX_ASV_CACHE"  # default ~/.cache/mlx-asv
SOURCE_ENV = "MLX_ASV_SOURCE"  # an MLX repository to build releases without wheels from
BLAS_ENV = "MLX_ASV_BLAS"  # reference (default) | openblas | auto
BUILD_PYTHON_ENV = "MLX_ASV_BUILD_PYTHON"  # build with this interpreter instead of a cached build venv
JOBS_ENV = "MLX_ASV_BUILD_JOBS"
# The files of an MLX commit that the plan reads.
PLAN_FILES = ("setup.py", "pyproject.toml", "mlx/version.h", "CMakeLists.txt",
              "mlx/io/CMakeLists.txt", "python/src/CMakeLists.txt")
# FetchContent dependencies a CPU build needs (the others: Windows, CUDA, Metal,
# OpenBLAS from source).
NEEDED_DEPS = {"json", "fmt", "gguflib", "nanobind"}
NEEDED_DEPS_DARWIN = NEEDED_DEPS | {"metal_cpp"}
DEFAULT_CMAKE_MIN = (3, 25)


class SourceError(Exception):
    """One line: what is missing or wrong, and what to do."""


def cache_dir(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mlx-asv")


def is_url(source):
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://|^git@", source))


# --------------------------------------------------------------------------
# Reading an MLX repository (a clone, a bare git directory, or a mirror of a URL)
# --------------------------------------------------------------------------


def git(repo, *args, input=None, check=True, binary=False):
    proc = subprocess.run(["git", "-C", repo, *args], input=input, capture_output=True,
                          text=not binary, env=dict(os.environ, LC_ALL="C"))
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if binary else proc.stderr
        raise SourceError(f"git {' '.join(args[:3])} failed in {repo}: "
                          f"{(err.strip().splitlines() or ['?'])[-1]}")
    return proc.stdout


def mirror(url, environ=None, log=print):
    """A local bare mirror of ``url`` (cloned once, fetched after): the path."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", url.rstrip("/").split("://")[-1])
    path = os.path.join(cache_dir(environ), "repos", name + ".git")
    if os.path.isdir(path):
        log(f"mlx source: fetching {url} into {path}")
        git(path, "fetch", "--tags", "--prune", "origin")
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log(f"mlx source: cloning {url} into {path} (once)")
        proc = subprocess.run(["git", "clone", "--mirror", "-q", url, path], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SourceError(f"cannot clone {url}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return path


def local_repo(source, environ=None, log=print):
    """The local git repository for ``source`` (a path, or a URL: mirrored)."""
    if shutil.which("git") is None:
        raise SourceError("building MLX from source needs git; install git")
    if is_url(source):
        return mirror(source, environ, log)
    path = os.path.abspath(os.path.expanduser(source))
    if not os.path.isdir(path):
        raise SourceError(f"{source}: no such MLX repository (a clone, a git directory or a URL)")
    if subprocess.run(["git", "-C", path, "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
        raise SourceError(f"{source}: not a git repository")
    return path


def resolve(repo, ref):
    out = git(repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False).strip()
    if not out:
        raise SourceError(f"{ref!r} is not a commit of the MLX repository {repo}")
    return out


def first_parent_range(repo, start, end):
    """[start, ..., end]: ``start`` and the first-parent commits after it up to
    ``end``, oldest first (full hashes)."""
    a, b = resolve(repo, start), resolve(repo, end)
    proc = subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor", a, b])
    if proc.returncode != 0:
        raise SourceError(f"{start} is not an ancestor of {end} in {repo}")
    chain = git(repo, "rev-list", "--first-parent", "--reverse", f"{a}..{b}").split()
    if b not in chain and a != b:
        raise SourceError(f"{end} is not on the first-parent line from {start}")
    return [a] + chain


@dataclasses.dataclass
class Commit:
    sha: str
    title: str
    date: dt.datetime  # committer date, with its time zone


def commit_info(repo, shas):
    """[Commit] for ``shas`` (same order)."""
    if not shas:
        return []
    out = git(repo, "show", "-s", "--no-walk=unsorted", "--format=%H%x00%cI%x00%s%x1e", *shas)
    found = {}
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, date, title = rec.split("\x00", 2)
        found[sha] = Commit(sha, title, dt.datetime.fromisoformat(date))
    return [found[s] for s in shas]


def read_files(repo, sha, paths=PLAN_FILES):
    """{path: text or None} of ``paths`` at commit ``sha`` (one git process)."""
    req = "".join(f"{sha}:{p}\n" for p in paths).encode()
    out = git(repo, "cat-file", "--batch", input=req, binary=True)
    files, pos = {}, 0
    for p in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode()
        pos = end + 1
        if header.endswith(" missing"):
            files[p] = None
            continue
        size = int(header.split()[-1])
        files[p] = out[pos:pos + size].decode(errors="replace")
        pos += size + 1
    return files


# --------------------------------------------------------------------------
# The plan: what a commit's own files say about building it (pure functions)
# --------------------------------------------------------------------------


def version_from_source(files):
    """The MLX version a commit's source says: setup.py's get_version("X.Y.Z")
    or version="X.Y.Z" (up to 0.23.x), else mlx/version.h (0.24 on)."""
    setup = files.get("setup.py") or ""
    m = re.search(r"""get_version\(\s*["'](\d+\.\d+\.\d+)["']\s*\)""", setup) or \
        re.search(r"""version\s*=\s*["'](\d+\.\d+\.\d+)["']""", setup)
    if m:
        return m.group(1)
    header = files.get("mlx/version.h") or ""
    parts = [re.search(rf"#define\s+MLX_VERSION_{p}\s+(\d+)", header) for p in ("MAJOR", "MINOR", "PATCH")]
    if all(parts):
        return ".".join(m.group(1) for m in parts)
    raise SourceError("cannot tell the MLX version of this commit (no get_version(...) in setup.py, "
                      "no MLX_VERSION_* in mlx/version.h)")


def build_requires(files):
    """pyproject.toml's [build-system] requires (e.g. ['setuptools>=42', 'nanobind==2.2.0', 'cmake>=3.24'])."""
    import tomllib

    text = files.get("pyproject.toml")
    if not text:
        return ["setuptools>=42"]
    try:
        return list(tomllib.loads(text).get("build-system", {}).get("requires", []))
    except tomllib.TOMLDecodeError as e:
        raise SourceError(f"pyproject.toml: {e}") from None


def cmake_minimum(files):
    m = re.search(r"cmake_minimum_required\s*\(\s*VERSION\s+(\d+)\.(\d+)", files.get("CMakeLists.txt") or "", re.I)
    return (int(m.group(1)), int(m.group(2))) if m else DEFAULT_CMAKE_MIN


@dataclasses.dataclass
class Dep:
    name: str  # FetchContent's name (json, fmt, gguflib, nanobind)
    tag: str  # GIT_TAG, or the version in the URL
    url: str  # GIT_REPOSITORY or URL
    git: bool

    @property
    def folder(self):
        return f"{self.name}-{self.tag}"

    @property
    def variable(self):
        return f"FETCHCONTENT_SOURCE_DIR_{self.name.upper()}"


def fetchcontent_deps(files, system="Linux"):
    """The FetchContent dependencies a build of this commit downloads."""
    wanted = NEEDED_DEPS_DARWIN if system == "Darwin" else NEEDED_DEPS
    deps = {}
    for path, text in sorted(files.items()):
        if not path.endswith("CMakeLists.txt") or not text:
            continue
        for m in re.finditer(r"FetchContent_Declare\s*\(\s*([A-Za-z0-9_.-]+)(.*?)\)", text, re.S):
            name, body = m.group(1), m.group(2)
            if name not in wanted:
                continue
            repo = re.search(r"GIT_REPOSITORY\s+(\S+)", body)
            tag = re.search(r"GIT_TAG\s+(\S+)", body)
            url = re.search(r"\bURL\s+(\S+)", body)
            if repo:
                deps[name] = Dep(name, tag.group(1) if tag else "HEAD", repo.group(1), True)
            elif url:
                v = re.search(r"v?(\d+\.\d+\.\d+)", url.group(1))
                deps[name] = Dep(name, "v" + v.group(1) if v else "local", url.group(1), False)
    return [deps[k] for k in sorted(deps)]


def nanobind_of(files):
    """'2.2.0', '2.4.0' (pyproject's pin), 'cmake:v2.15.0' (fetched by CMake), or None (pybind11 era)."""
    for req in build_requires(files):
        m = re.fullmatch(r"nanobind\s*==\s*([\w.]+)", req.strip())
        if m:
            return m.group(1)
    for d in fetchcontent_deps(files):
        if d.name == "nanobind":
            return f"cmake:{d.tag}"
    return None


def needs_rpath_fix(files, system="Linux"):
    r"""True where, on Linux, the Python module would find ``libmlx.so`` in the
    build tree rather than in its own wheel:

    - before a5ac9244c (v0.26.2~50) the module is linked with only the macOS
      rpath (@loader_path/lib);
    - from then until MLX set BUILD_WITH_INSTALL_RPATH itself (0.31-0.32),
      it adds ``-Wl,-rpath,\$ORIGIN/lib`` as a link option, which reaches the
      linker as ``$$ORIGIN/lib``: the loader does not expand it, and CMake's
      build-tree path comes next. Measured: a wheel of e3d004fed9 (0.29.2)
      imported the libmlx.so of the build made after it (0.29.3).

    Both load another build's library once the build folder is reused."""
    text = files.get("python/src/CMakeLists.txt") or ""
    return system == "Linux" and "@loader_path" in text and "BUILD_WITH_INSTALL_RPATH" not in text


RPATH_ARGS = ["-DCMAKE_SKIP_BUILD_RPATH=ON", "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
              "-DCMAKE_INSTALL_RPATH=$ORIGIN/lib"]


def fetchcontent_args(deps, deps_dir, exists=os.path.isdir):
    """(CMake arguments, missing deps): local copies where they exist; fully
    disconnected (offline) only when every dependency has one."""
    args, missing = [], []
    for d in deps:
        path = os.path.join(deps_dir, d.folder)
        if exists(path):
            args.append(f"-D{d.variable}={path}")
        else:
            missing.append(d)
    if deps and not missing:
        args.append("-DFETCHCONTENT_FULLY_DISCONNECTED=ON")
    return args, missing


@dataclasses.dataclass
class BuildPlan:
    version: str
    requires: list  # for the build environment
    nanobind: str | None
    cmake_min: tuple
    deps: list
    missing_deps: list
    cmake_args: list
    env: dict
    native: bool  # a CMake build (needs the C++ toolchain); False for a pure-Python tree

    def cmake_args_string(self):
        return " ".join(self.cmake_args)


def build_plan(files, system="Linux", blas="reference", ccache=None, deps_dir=None,
               exists=os.path.isdir, jobs=None):
    """Everything about building one commit that its files decide (pure: the
    file texts in, the plan out; ``exists`` stands in for the file system)."""
    version = version_from_source(files)
    native = bool(files.get("CMakeLists.txt"))
    requires = build_requires(files)
    deps = fetchcontent_deps(files, system) if native else []
    args = ["-DCMAKE_BUILD_TYPE=Release"] if native else []
    if native and ccache:
        args += [f"-DCMAKE_C_COMPILER_LAUNCHER={ccache}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={ccache}"]
    if native and system == "Linux":
        if blas == "reference":
            args.append("-DBLA_VENDOR=Generic")
        elif blas == "openblas":
            args.append("-DBLA_VENDOR=OpenBLAS")
    if native and needs_rpath_fix(files, system):
        args += RPATH_ARGS
    missing = []
    if deps and deps_dir:
        more, missing = fetchcontent_args(deps, deps_dir, exists)
        args += more
    else:
        missing = list(deps)
    env = {"PYPI_RELEASE": "1"}
    if jobs:
        env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(jobs)
    if args:
        env["CMAKE_ARGS"] = " ".join(args)
    return BuildPlan(version, requires, nanobind_of(files), cmake_minimum(files) if native else None,
                     deps, missing, args, env, native)


# --------------------------------------------------------------------------
# The toolchain, checked before a build starts
# --------------------------------------------------------------------------

HEADER_DIRS = ("/usr/include", "/usr/local/include", f"/usr/include/{platform.machine()}-linux-gnu",
               "/usr/include/openblas", "/opt/homebrew/opt/openblas/include", "/usr/local/opt/openblas/include")
APT_HINT = "sudo apt-get install build-essential cmake ccache libblas-dev liblapack-dev liblapacke-dev"


def cmake_version(cmake):
    try:
        out = subprocess.run([cmake, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_toolchain(plan, system=None, which=shutil.which, header_dirs=HEADER_DIRS, environ=None,
                    cmake_version=cmake_version):
    """Raise SourceError (one line, naming the missing tool and its package)
    if this machine cannot build ``plan``. Returns notes: [(what, found)]."""
    environ = os.environ if environ is None else environ
    system = system or platform.system()
    found = []
    if which("git") is None:
        raise SourceError("building MLX from source needs git; install git")
    if not plan.native:
        return found
    mac = system == "Darwin"
    cxx = environ.get("CXX") or next((c for c in ("c++", "g++", "clang++") if which(c)), None)
    if not cxx or which(cxx) is None:
        raise SourceError("building MLX from source needs a C++ compiler (none of $CXX, c++, g++, clang++ found); "
                          + ("install the Xcode Command Line Tools: xcode-select --install" if mac
                             else "on Debian/Ubuntu: sudo apt-get install build-essential"))
    found.append(("C++ compiler", which(cxx)))
    need = plan.cmake_min or DEFAULT_CMAKE_MIN
    cmake = which("cmake")
    have = cmake_version(cmake) if cmake else None
    if have is None or have < need:
        if any(re.match(r"cmake\b", r) for r in plan.requires):
            found.append(("CMake", f"the registry's cmake in the build environment (this machine: "
                                   f"{'.'.join(map(str, have)) if have else 'none'})"))
        else:
            raise SourceError(f"building MLX from source needs CMake >= {need[0]}.{need[1]} "
                              f"({'found ' + '.'.join(map(str, have)) if have else 'none found'}); "
                              + ("brew install cmake" if mac else "pip install cmake, or sudo apt-get install cmake"))
    else:
        found.append(("CMake", f"{cmake} {'.'.join(map(str, have))}"))
    if system == "Linux":
        for header, pkg in (("cblas.h", "libblas-dev"), ("lapacke.h", "liblapacke-dev")):
            if not any(os.path.exists(os.path.join(d, header)) for d in header_dirs):
                raise SourceError(f"building MLX from source needs the BLAS/LAPACK headers ({header} not found); "
                                  f"on Debian/Ubuntu: sudo apt-get install libblas-dev liblapack-dev "
                                  f"liblapacke-dev (the reference BLAS, as MLX's Linux wheels; {pkg} has {header})")
        found.append(("BLAS/LAPACK headers", "cblas.h, lapacke.h"))
    found.append(("ccache", which("ccache") or "not installed: every build starts from nothing (optional)"))
    return found


# --------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------


def python_tag():
    return f"cp{sys.version_info.major}{sys.version_info.minor}-{platform.system().lower()}-{platform.machine()}"


def wheel_dir(sha, environ=None):
    return os.path.join(cache_dir(environ), "wheels", sha, python_tag())


def recipe(cmake_args):
    """The CMake arguments that shape the binary: without where the
    dependencies' sources come from and the compiler launcher."""
    return [a for a in cmake_args if "FETCHCONTENT" not in a and "_COMPILER_LAUNCHER" not in a]


def cached_wheel(sha, environ=None, cmake_args=None):
    """The cached wheel of ``sha``, or None. With ``cmake_args`` (the build
    plan's), a wheel built by another recipe (another BLAS, no rpath fix) is
    not a hit: it is built again."""
    folder = wheel_dir(sha, environ)
    try:
        wheels = sorted(f for f in os.listdir(folder) if f.endswith(".whl"))
    except OSError:
        return None
    info = os.path.join(folder, "build.json")
    if not wheels or not os.path.exists(info):
        return None
    if cmake_args is not None:
        try:
            with open(info, encoding="utf-8") as f:
                built = json.load(f).get("cmake_args") or []
        except (OSError, ValueError):
            return None
        if recipe(built) != recipe(cmake_args):
            return None
    return os.path.join(folder, wheels[0])


def build_tree_runpath(wheel, build_root, readelf="readelf", run=subprocess.run):
    """The RPATH/RUNPATH entries of the wheel's extension modules that point
    into the build folder (a wheel that would load another build's library),
    or [] (also when readelf is missing: the install's import check remains)."""
    found = []
    if not zipfile.is_zipfile(wheel):
        return []  # not a wheel at all: installing it fails, in one line
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        for name in zf.namelist():
            if not re.search(r"\.so(\.|$)", name):
                continue
            path = zf.extract(name, tmp)
            try:
                out = run([readelf, "-d", path], capture_output=True, text=True).stdout
            except OSError:
                return []
            for m in re.finditer(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[([^\]]*)\]", out):
                found += [e for e in m.group(1).split(":") if e.startswith(build_root)]
    return found


def export_tree(repo, sha, dest):
    """The files of commit ``sha`` in ``dest`` (git archive; no .git)."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    data = git(repo, "archive", "--format=tar", sha, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


def build_python(requires, environ=None, log=print, run=subprocess.run):
    """The interpreter to build with: $MLX_ASV_BUILD_PYTHON, else a venv
    cached per build-requirement set (so nanobind 2.2.0 and 2.4.0 commits
    each get theirs, installed once)."""
    environ = os.environ if environ is None else environ
    if environ.get(BUILD_PYTHON_ENV):
        return environ[BUILD_PYTHON_ENV]
    reqs = sorted(set(requires) | {"wheel"})
    key = hashlib.sha256(("\n".join(reqs) + sys.version).encode()).hexdigest()[:16]
    venv = os.path.join(cache_dir(environ), "buildenv", key)
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".installed")
    if not os.path.exists(stamp):
        log(f"mlx source: build environment {venv}: {' '.join(reqs)}")
        proc = run([sys.executable, "-m", "venv", "--clear", venv], capture_output=True, text=True)
        if proc.returncode == 0:
            proc = run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
                       capture_output=True, text=True)
        if proc.returncode != 0:
            raise SourceError(f"cannot set up the build environment ({' '.join(reqs)}): "
                              f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        with open(stamp, "w") as f:
            f.write("\n".join(reqs) + "\n")
    return py


def build_wheel(repo, sha, environ=None, log=print, system=None, check=check_toolchain):
    """The wheel of MLX commit ``sha`` for this interpreter: from the cache,
    else built (see the module docstring). Returns (wheel path, build info)."""
    environ = dict(os.environ if environ is None else environ)
    system = system or platform.system()
    sha = resolve(repo, sha)
    files = read_files(repo, sha)
    blas = environ.get(BLAS_ENV, "reference")
    if blas not in ("reference", "openblas", "auto"):
        raise SourceError(f"{BLAS_ENV}={blas!r} is not one of reference, openblas, auto")
    root = cache_dir(environ)
    jobs = environ.get(JOBS_ENV) or os.cpu_count()
    plan = build_plan(files, system=system, blas=blas, ccache=shutil.which("ccache"),
                      deps_dir=os.path.join(root, "fetchcontent"), jobs=jobs)
    hit = cached_wheel(sha, environ, plan.cmake_args)
    if hit:
        with open(os.path.join(os.path.dirname(hit), "build.json")) as f:
            info = json.load(f)
        log(f"mlx source: {sha[:10]} ({info.get('version')}) from the wheel cache: {hit}")
        return hit, info
    if cached_wheel(sha, environ):
        log(f"mlx source: {sha[:10]}: the cached wheel was built by another recipe; building it again")
    try:
        tools = check(plan, system=system, environ=environ)
    except SourceError as e:
        raise SourceError(f"MLX {sha[:10]} ({plan.version}) has no wheel and cannot be built here: {e}") from None
    for p in plan.cmake_args + [root]:
        if " " in p:
            raise SourceError(f"MLX's setup.py splits CMAKE_ARGS at spaces: {p!r} has one "
                              f"(set {CACHE_ENV} to a path without spaces)")
    if plan.missing_deps:
        log("mlx source: CMake will download " + ", ".join(f"{d.name} {d.tag}" for d in plan.missing_deps)
            + f" (offline: put copies in {os.path.join(root, 'fetchcontent', '<name>-<tag>')})")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time: they share the source folder
        hit = cached_wheel(sha, environ, plan.cmake_args)
        if hit:
            with open(os.path.join(os.path.dirname(hit), "build.json")) as f:
                return hit, json.load(f)
        return _build(repo, sha, plan, tools, blas, environ, root, log)


# Lines of a failed build's log that say what went wrong, most telling first:
# pip's own "finished with status 'error'" says nothing.
_FAILURE_PATTERNS = (
    r"Failed to clone repository|Could not resolve host|Each download failed|unable to access",
    r"CMake Error|fatal error:|error:",
    r"[Ee]rror",
)


def failure_line(lines, missing_deps=(), deps_dir=""):
    """The one line a failed build is reported with. A dependency CMake had to
    download (no local copy) that could not be fetched names its fix: the
    folder its copy goes in (README, "MLX from source")."""
    download = re.compile(_FAILURE_PATTERNS[0])
    if missing_deps and any(download.search(ln) for ln in lines):
        names = ", ".join(f"{d.name} {d.tag}" for d in missing_deps)
        where = ", ".join(os.path.join(deps_dir, d.folder) for d in missing_deps)
        return (f"CMake could not download {names} (offline?): put a copy of each in {where} "
                f"(README, 'MLX from source', shows git archive commands)")
    for pattern in _FAILURE_PATTERNS:
        hits = [ln for ln in lines if re.search(pattern, ln) and "finished with status" not in ln]
        if hits:
            return hits[0][:200]
    return (lines or ["(no output)"])[-1][:200]


def _build(repo, sha, plan, tools, blas, environ, root, log):
    py = build_python(plan.requires, environ, log)
    # a fixed path, so that ccache sees the same command lines from one commit to the next
    src = os.path.join(root, "build", "src")
    export_tree(repo, sha, src)
    out = os.path.join(root, "build", "dist")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    env = dict(environ, **plan.env)
    if plan.native:
        # CMake's FindPython would take the first python3 on PATH (measured
        # here: pyenv's shim, without nanobind: "Could not find a package
        # configuration file provided by nanobind"); MLX finds nanobind
        # through the interpreter, so it must be the build environment's.
        env["CMAKE_ARGS"] = " ".join(filter(None, [env.get("CMAKE_ARGS"), f"-DPython_EXECUTABLE={py}"]))
    if tools and any(name == "ccache" and str(where).startswith("/") for name, where in tools):
        env.setdefault("CCACHE_BASEDIR", src)
    final = wheel_dir(sha, environ)
    os.makedirs(final, exist_ok=True)
    logpath = os.path.join(final, "build.log")
    log(f"mlx source: building {sha[:10]} (MLX {plan.version}) into a wheel; log: {logpath}")
    started = time.time()
    with open(logpath, "w") as logf:
        logf.write(f"# CMAKE_ARGS={env.get('CMAKE_ARGS', '')}\n# PYPI_RELEASE=1\n")
        logf.flush()
        proc = subprocess.run([py, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                               "--disable-pip-version-check", "-w", out, src],
                              stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=src)
    seconds = time.time() - started
    wheels = [f for f in os.listdir(out) if f.endswith(".whl")]
    if proc.returncode != 0 or not wheels:
        with open(logpath, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        raise SourceError(f"MLX {sha[:10]} ({plan.version}): the build failed after {seconds:.0f} s: "
                          f"{failure_line(lines, plan.missing_deps, os.path.join(root, 'fetchcontent'))} "
                          f"(log: {logpath})")
    stray = build_tree_runpath(os.path.join(out, wheels[0]), root) if plan.native and platform.system() == "Linux" else []
    if stray:
        raise SourceError(f"MLX {sha[:10]} ({plan.version}): the built wheel would load libmlx.so from the "
                          f"build folder ({stray[0]}), not its own: its rpath needs mlxsource's fix "
                          f"(needs_rpath_fix); nothing was cached")
    for old in os.listdir(final):  # a wheel of another recipe
        if old.endswith(".whl"):
            os.remove(os.path.join(final, old))
    wheel = os.path.join(final, wheels[0])
    shutil.move(os.path.join(out, wheels[0]), wheel)
    info = {"kind": "source", "commit": sha, "version": plan.version, "blas": blas if plan.native else "none",
            "nanobind": plan.nanobind, "cmake_args": plan.cmake_args, "env": {"PYPI_RELEASE": "1"},
            "tools": {k: str(v) for k, v in tools}, "seconds": round(seconds, 1),
            "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": python_tag(), "wheel": os.path.basename(wheel)}
    with open(os.path.join(final, "build.json"), "w") as f:
        json.dump(info, f, indent=1)
    log(f"mlx source: built {os.path.basename(wheel)} in {seconds:.0f} s")
    return wheel, info


def version_key(version):
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])
