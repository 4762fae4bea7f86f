"""MLX from source: the ledger's source mode, install.py's source builds, the build plan.

Offline and fast: a tiny git repository stands in for MLX (a pure-Python
package ``mlx`` whose ``mlx/core.py`` has ``__version__``; ``pip wheel``
builds it in seconds). The build plan's per-commit rules are checked against
MLX's real history where its git directory is on the machine (marked slow),
and one real build of an MLX tag runs only with MLX_ASV_REAL_BUILD=1.
"""

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

from mlx_asv.envs import install, ledger, mlxsource

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MLX_GIT = os.environ.get("MLX_ASV_TEST_MLX_GIT", "/work/.mirror/ml-explore+mlx/repo")
from conftest import SMALL_TABLE as TABLE, make_venv

SETUP_PY = '''import os
from setuptools import setup


def get_version(version):
    # MLX appends a date and the git hash unless PYPI_RELEASE is set; the
    # exported tree has no git, so this stand-in insists on it.
    if "PYPI_RELEASE" not in os.environ:
        raise SystemExit("PYPI_RELEASE is not set")
    return version


setup(name="mlx", version=get_version("{version}"), packages=["mlx"])
'''
PYPROJECT = '[build-system]\nrequires = ["setuptools>=42"]\nbuild-backend = "setuptools.build_meta"\n'


def _git(repo, *args, date=None):
    env = dict(os.environ, GIT_AUTHOR_NAME="A", GIT_AUTHOR_EMAIL="a@x", GIT_COMMITTER_NAME="A",
               GIT_COMMITTER_EMAIL="a@x")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _commit(repo, version, title, date, native=False, tag=None):
    (repo / "mlx").mkdir(exist_ok=True)
    (repo / "mlx" / "__init__.py").write_text("")
    (repo / "mlx" / "core.py").write_text(f'__version__ = "{version}"\nTITLE = "{title}"\n')
    (repo / "setup.py").write_text(SETUP_PY.replace("{version}", version))
    (repo / "pyproject.toml").write_text(PYPROJECT)
    if native:
        (repo / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.25)\nproject(mlx)\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", title, date=date)
    if tag:
        _git(repo, "tag", tag)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def fake_mlx(tmp_path_factory):
    """A stand-in MLX: v0.1.0, two commits, v0.2.0 (the bump), one more commit."""
    repo = tmp_path_factory.mktemp("mlx")
    _git(repo, "init", "-q", "-b", "main")
    shas = [
        _commit(repo, "0.1.0", "release 0.1.0", "2025-01-01T00:00:00+00:00", tag="v0.1.0"),
        _commit(repo, "0.1.0", "make softmax slower (#2)", "2025-01-10T10:00:00-08:00"),
        _commit(repo, "0.1.0", "fix a typo (#3)", "2025-01-20T12:30:00+02:00"),
        _commit(repo, "0.2.0", "Bump version (#4)", "2025-02-01T00:00:00+00:00", tag="v0.2.0"),
        _commit(repo, "0.2.0", "after the release (#5)", "2025-02-05T00:00:00+00:00"),
    ]
    return str(repo), shas


def lgit(repo, *args):
    return ledger.git(repo, *args).strip()


# --------------------------------------------------------------------------
# The ledger's source mode
# --------------------------------------------------------------------------


def test_source_range_is_a_branch_of_mlx_commits_on_its_release(small_ledger, fake_mlx):
    src, shas = fake_mlx
    main_before = lgit(small_ledger, "rev-parse", "main")
    tags_before = lgit(small_ledger, "for-each-ref", "refs/tags")
    added = ledger.add_source_range(src, "v0.1.0", "v0.2.0", repo=small_ledger, log=lambda m: None)
    branch = "source/v0.1.0-v0.2.0"
    # one ledger commit per MLX commit, from the start release's own commit, in order
    assert [s for _, s, _ in added] == shas[:4]
    chain = lgit(small_ledger, "rev-list", "--first-parent", "--reverse", f"v0.1.0..{branch}").split()
    assert chain == [c for c, _, _ in added]
    assert lgit(small_ledger, "rev-parse", f"{chain[0]}^") == lgit(small_ledger, "rev-parse", "v0.1.0^{commit}")
    # MLX_VERSION is what the source says there; MLX_SOURCE names repo, commit, date, title
    assert [lgit(small_ledger, "show", f"{c}:MLX_VERSION") for c in chain] == ["0.1.0", "0.1.0", "0.1.0", "0.2.0"]
    about = ledger.read_source_text(lgit(small_ledger, "show", f"{chain[1]}:MLX_SOURCE"))
    assert about == {"repo": os.path.abspath(src), "commit": shas[1], "version": "0.1.0",
                     "date": "2025-01-10T10:00:00-08:00", "title": "make softmax slower (#2)"}
    # dated on MLX's committer dates (with their zones), by the ledger's identity
    dates = lgit(small_ledger, "log", "--format=%cI %an", "--reverse", f"v0.1.0..{branch}").splitlines()
    assert dates[1:3] == ["2025-01-10T10:00:00-08:00 mlx-asv ledger", "2025-01-20T12:30:00+02:00 mlx-asv ledger"]
    # main and the tags are untouched: asv publish keeps graphing releases
    assert lgit(small_ledger, "rev-parse", "main") == main_before
    assert lgit(small_ledger, "for-each-ref", "refs/tags") == tags_before
    assert not set(chain) & set(lgit(small_ledger, "rev-list", "main").split())
    # listed, readable back, and the source is remembered for install.py
    assert ledger.source_branches(small_ledger) == [(branch, chain[-1], 4)]
    assert [a["commit"] for _, a in ledger.source_commits(branch, small_ledger)] == shas[:4]
    assert ledger.configured_source(small_ledger, environ={}) == os.path.abspath(src)
    assert ledger.configured_source(small_ledger, environ={"MLX_ASV_SOURCE": "/x"}) == "/x"


def test_source_hashes_are_deterministic_and_survive_a_rebuild(tmp_path, fake_mlx):
    src, _ = fake_mlx
    tips = []
    for i in range(2):
        table = tmp_path / f"t{i}.tsv"
        table.write_text(TABLE)
        repo = str(tmp_path / f"ledger{i}")
        ledger.build(ledger.read_table(str(table)), repo=repo, log=lambda m: None)
        ledger.add_source_range(src, "v0.1.0", "v0.2.0", repo=repo, record_as="https://example.invalid/mlx",
                                log=lambda m: None)
        tips.append(lgit(repo, "rev-parse", "source/v0.1.0-v0.2.0"))
    assert tips[0] == tips[1]
    # again into the same ledger: nothing changes; a ledger rebuild keeps the branch
    ledger.add_source_range(src, "v0.1.0", "v0.2.0", repo=repo, record_as="https://example.invalid/mlx",
                            log=lambda m: None)
    ledger.build(ledger.read_table(str(table)), repo=repo, log=lambda m: None)
    assert lgit(repo, "rev-parse", "source/v0.1.0-v0.2.0") == tips[0]


def test_asv_sees_the_source_range(small_ledger, fake_mlx):
    """asv's own git plugin: a range from the release to the branch is the MLX commits."""
    from asv.plugins.git import Git

    src, shas = fake_mlx
    added = ledger.add_source_range(src, "v0.1.0", "v0.2.0", name="r", repo=small_ledger, log=lambda m: None)
    g = Git(small_ledger, small_ledger + "-mirror")  # a local repository: asv reads it in place
    got = g.get_hashes_from_range("v0.1.0..source/r")
    assert sorted(got) == sorted(c for c, _, _ in added)
    assert g.get_hashes_from_range("main~2..main") == lgit(small_ledger, "rev-list", "main~2..main").split()


def test_source_candidate_of_a_pull_request_head(small_ledger, fake_mlx):
    src, shas = fake_mlx
    commit = ledger.add_source_candidate("pr-5", "v0.2.0", src, "main", repo=small_ledger, log=lambda m: None)
    assert lgit(small_ledger, "rev-parse", f"{commit}^") == lgit(small_ledger, "rev-parse", "v0.2.0^{commit}")
    assert "kind source" in lgit(small_ledger, "show", f"{commit}:MLX_CANDIDATE")
    assert ledger.read_source_text(lgit(small_ledger, "show", f"{commit}:MLX_SOURCE"))["commit"] == shas[4]
    assert lgit(small_ledger, "show", f"{commit}:MLX_VERSION") == "0.2.0"
    again = ledger.add_source_candidate("pr-5", "v0.2.0", src, "main", repo=small_ledger, log=lambda m: None)
    assert again == commit  # dated on the MLX commit: the same hash every time


@pytest.mark.parametrize("args,message", [
    (["--source", "/nonexistent/mlx", "--commits", "v0.1.0..v0.2.0"], "no such MLX repository"),
    (["--commits", "v0.1.0..v0.2.0"], "name it with --source REPO"),
    (["--source", "{src}", "--commits", "v0.9.0..v0.2.0"], "v0.9.0 is not one"),
    (["--source", "{src}", "--commits", "v0.2.0"], "a range A..B"),
    (["--source", "{src}", "--commits", "v0.1.0..nosuchref"], "'nosuchref' is not a commit"),
])
def test_source_mode_errors_are_one_line(tmp_path, fake_mlx, args, message):
    src, _ = fake_mlx
    table = tmp_path / "t.tsv"
    table.write_text(TABLE)
    args = [a.replace("{src}", src) for a in args]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "ledger.py"), "--offline", "--table",
                           str(table), "--repo", str(tmp_path / "ledger"), *args], capture_output=True, text=True)
    err = [line for line in proc.stderr.splitlines() if line.startswith("ledger: error")]
    assert proc.returncode == 1 and len(err) == 1 and message in err[0], proc.stderr


def test_cli_adds_and_lists_a_source_range(tmp_path, fake_mlx):
    src, _ = fake_mlx
    table = tmp_path / "t.tsv"
    table.write_text(TABLE)
    base = [sys.executable, os.path.join(ROOT, "tools", "ledger.py"), "--offline", "--table", str(table),
            "--repo", str(tmp_path / "ledger")]
    subprocess.run(base + ["--source", src, "--commits", "v0.1.0..v0.2.0", "--name", "bump"], check=True,
                   capture_output=True)
    out = subprocess.run(base + ["--list"], check=True, capture_output=True, text=True).stdout
    assert "source/bump\t4 MLX commits from source\t" in out
    subprocess.run(base + ["--remove-source", "bump"], check=True, capture_output=True)
    assert "source/bump" not in subprocess.run(base + ["--list"], capture_output=True, text=True).stdout


# --------------------------------------------------------------------------
# install.py: building a commit into a wheel, the cache, the one-line failures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target_venv(tmp_path_factory):
    """A venv of its own to install the stand-in into (never the project's .venv)."""
    return make_venv(tmp_path_factory.mktemp("venv"))


def _run_install(py, build_dir, env, *extra):
    return subprocess.run([py, os.path.join(ROOT, "tools", "install.py"), "--build-dir", str(build_dir),
                           "--failure-log", str(build_dir.parent / "results" / "install-failures.tsv"), *extra],
                          capture_output=True, text=True, env=env, timeout=300)


def _checkout(repo, commit, dest):
    """asv's build directory: a shared clone of the ledger with the commit checked out."""
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", repo, str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", commit], check=True, capture_output=True)
    return dest


def build_env(tmp_path, **more):
    env = dict(os.environ, MLX_ASV_CACHE=str(tmp_path / "cache"), MLX_ASV_BUILD_PYTHON=sys.executable,
               PIP_NO_INDEX="1", MLX_ASV_OFFLINE="1")
    env.pop("MLX_ASV_SOURCE", None)
    env.update(more)
    return env


def test_install_builds_a_source_commit_once_then_uses_the_cache(tmp_path, small_ledger, fake_mlx, target_venv):
    src, shas = fake_mlx
    added = ledger.add_source_range(src, "v0.1.0", "v0.2.0", repo=small_ledger, log=lambda m: None)
    commit = added[1][0]  # MLX's "make softmax slower" commit
    build_dir = _checkout(small_ledger, commit, tmp_path / "build")
    env = build_env(tmp_path, MLX_ASV_SOURCE=src)
    proc = _run_install(target_venv, build_dir, env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "building" in out and f"installed MLX 0.1.0 built from {shas[1][:10]}" in out
    folder = tmp_path / "cache" / "wheels" / shas[1] / mlxsource.python_tag()
    wheels = [f for f in os.listdir(folder) if f.endswith(".whl")]
    assert wheels == ["mlx-0.1.0-py3-none-any.whl"]
    info = json.loads((folder / "build.json").read_text())
    assert info["commit"] == shas[1] and info["version"] == "0.1.0" and info["env"] == {"PYPI_RELEASE": "1"}
    # the installed package is that commit's, and says how it was made
    check = subprocess.run([target_venv, "-c", "import mlx.core as m; print(m.__version__, m.TITLE)"],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "0.1.0 make softmax slower (#2)"
    marker = subprocess.run([target_venv, "-c", "import sys; sys.path.insert(0, %r); from mlx_asv.envs import install; "
                             "import json; print(json.dumps(install.installed_build()))" % ROOT],
                            capture_output=True, text=True)
    assert json.loads(marker.stdout)["kind"] == "source"
    rows = (tmp_path / "results" / "install-builds.tsv").read_text().splitlines()
    assert len(rows) == 1 and rows[0].startswith(commit + "\t0.1.0\t") and f"source {shas[1]}" in rows[0]
    # the second install of that commit takes the cached wheel: no build
    mtime = os.path.getmtime(folder / wheels[0])
    proc = _run_install(target_venv, build_dir, env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "from the wheel cache" in out and "building" not in out
    assert os.path.getmtime(folder / wheels[0]) == mtime
    # and that wheel, the same file, is installed already: kept, not installed again
    assert f"kept MLX 0.1.0 built from {shas[1][:10]}" in out


def test_a_release_without_a_wheel_is_built_from_its_tag(tmp_path, fake_mlx, target_venv, monkeypatch):
    """install(): no wheel + a configured source -> the tag's build; no source -> the one-line no-wheel error."""
    src, shas = fake_mlx
    no_wheels = lambda dist: ["0.0.9", "0.3.0"]  # noqa: E731 - the registry has other versions only
    with pytest.raises(install.InstallError, match=r"MLX 0.2.0: no wheel for .*nearest with wheels: 0.0.9, 0.3.0"):
        install.install("0.2.0", flavor="cpu", source=None, lookup=no_wheels, log=lambda m: None)
    assert install.install("0.2.0", flavor="cpu", source=src, lookup=no_wheels, dry_run=True,
                           log=lambda m: None) == "source v0.2.0"
    # the real thing, in the separate venv
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "MLX_VERSION").write_text("0.2.0\n")
    code = ("import sys; sys.path.insert(0, %r); from mlx_asv.envs import install; "
            "install.install('0.2.0', flavor='cpu', source=%r, lookup=lambda d: ['0.3.0'])" % (ROOT, src))
    proc = subprocess.run([target_venv, "-c", code], capture_output=True, text=True, env=build_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert os.path.isdir(tmp_path / "cache" / "wheels" / shas[3])  # v0.2.0's commit
    check = subprocess.run([target_venv, "-c", "import mlx.core as m; print(m.__version__, m.TITLE)"],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "0.2.0 Bump version (#4)"


def _path_with(tmp_path, *tools):
    """A PATH holding only these tools (links to the real ones)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for t in tools:
        real = shutil.which(t)
        if real and not (folder / t).exists():
            os.symlink(real, folder / t)
    return str(folder)


@pytest.fixture(scope="module")
def native_mlx(tmp_path_factory):
    """A stand-in whose tree has a CMakeLists.txt: its build needs the C++ toolchain."""
    repo = tmp_path_factory.mktemp("mlx-native")
    _git(repo, "init", "-q", "-b", "main")
    sha = _commit(repo, "0.1.0", "native", "2025-01-01T00:00:00+00:00", native=True, tag="v0.1.0")
    return str(repo), sha


@pytest.mark.parametrize("tools,message", [
    (["git"], "needs a C++ compiler (none of $CXX, c++, g++, clang++ found); on Debian/Ubuntu: "
              "sudo apt-get install build-essential"),
    (["git", "c++"], "needs CMake >= 3.25 (none found)"),
    ([], "needs git"),
])
def test_a_missing_tool_fails_in_one_line_before_building(tmp_path, native_mlx, tools, message):
    src, sha = native_mlx
    env = build_env(tmp_path, PATH=_path_with(tmp_path, *tools))
    env.pop("CXX", None)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "install.py"), "--build-only",
                           "--source", src, "--commit", sha], capture_output=True, text=True, env=env, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and message in lines[0], proc.stderr
    if tools:
        assert lines[0].startswith(f"install.py: MLX {sha[:10]} (0.1.0) has no wheel and cannot be built here")
    assert not os.path.exists(tmp_path / "cache" / "build")  # nothing was started


def test_missing_blas_headers_name_the_packages():
    plan = mlxsource.build_plan({"setup.py": 'get_version("0.22.0")', "CMakeLists.txt": "x"})
    which = {"git": "/g", "c++": "/c", "cmake": "/m"}.get
    with pytest.raises(mlxsource.SourceError, match=r"cblas.h not found\); on Debian/Ubuntu: sudo apt-get install "
                                                    r"libblas-dev liblapack-dev liblapacke-dev"):
        mlxsource.check_toolchain(plan, system="Linux", which=which, header_dirs=[], environ={},
                                  cmake_version=lambda c: (3, 28))
    # old CMake, but the commit's pyproject asks for the registry's cmake: built with that one
    plan.requires.append("cmake>=3.25")
    found = mlxsource.check_toolchain(plan, system="Darwin", which=which, header_dirs=[], environ={},
                                      cmake_version=lambda c: (3, 22))
    assert "the registry's cmake" in dict(found)["CMake"] and "ccache" in dict(found)


def test_a_url_in_mlx_source_is_found_in_a_local_clone(tmp_path, fake_mlx):
    src, shas = fake_mlx
    about = {"repo": "https://example.invalid/mlx", "commit": shas[2]}
    assert install.source_repo_for(about, ledger_dir=str(tmp_path), environ={"MLX_ASV_SOURCE": src}) == src
    assert install.source_repo_for(about, ledger_dir=str(tmp_path), environ={}) == about["repo"]
    with pytest.raises(install.InstallError, match="set MLX_ASV_SOURCE to an MLX clone"):
        install.source_repo_for({"repo": str(tmp_path), "commit": shas[2]}, ledger_dir=str(tmp_path), environ={})


# --------------------------------------------------------------------------
# The build plan per MLX commit (pure functions)
# --------------------------------------------------------------------------

CMAKE_021 = """cmake_minimum_required(VERSION 3.24)
FetchContent_Declare(
  fmt
  GIT_REPOSITORY https://github.com/fmtlib/fmt.git
  GIT_TAG 10.2.1
  EXCLUDE_FROM_ALL)
FetchContent_Declare(metal_cpp URL ${METAL_CPP_URL})
"""
IO_021 = """FetchContent_Declare(
    json
    URL https://github.com/nlohmann/json/releases/download/v3.11.3/json.tar.xz)
  FetchContent_Declare(
    gguflib
    GIT_REPOSITORY https://github.com/antirez/gguf-tools/
    GIT_TAG af7d88d808a7608a33723fba067036202910acb3)
"""
PY_021 = "if(BUILD_SHARED_LIBS)\n  target_link_options(core PRIVATE -Wl,-rpath,@loader_path/lib)\nendif()\n"
PY_027 = PY_021.replace("PRIVATE -Wl", "PRIVATE -Wl,-rpath,\\$ORIGIN/lib -Wl")
PY_032 = ('if(APPLE)\n  set_target_properties(core PROPERTIES INSTALL_RPATH "@loader_path/lib")\nelse()\n'
          '  set_target_properties(core PROPERTIES INSTALL_RPATH "\\$ORIGIN/lib")\nendif()\n'
          'set_target_properties(core PROPERTIES BUILD_WITH_INSTALL_RPATH ON)\n')


def files_021(nanobind="2.2.0"):
    return {"setup.py": 'setup(version=get_version("0.21.1"))', "CMakeLists.txt": CMAKE_021,
            "mlx/io/CMakeLists.txt": IO_021, "python/src/CMakeLists.txt": PY_021,
            "pyproject.toml": f'[build-system]\nrequires = ["setuptools>=42", "nanobind=={nanobind}", "cmake>=3.24"]\n'}


def test_build_plan_of_a_0_21_commit_offline():
    have = {"/c/fmt-10.2.1", "/c/json-v3.11.3", "/c/gguflib-af7d88d808a7608a33723fba067036202910acb3"}
    plan = mlxsource.build_plan(files_021(), system="Linux", ccache="/usr/bin/ccache", deps_dir="/c",
                                exists=lambda p: p in have, jobs=2)
    assert plan.version == "0.21.1" and plan.nanobind == "2.2.0" and plan.cmake_min == (3, 24)
    assert plan.requires == ["setuptools>=42", "nanobind==2.2.0", "cmake>=3.24"]
    assert plan.cmake_args == [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCMAKE_C_COMPILER_LAUNCHER=/usr/bin/ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=/usr/bin/ccache",
        "-DBLA_VENDOR=Generic",
        "-DCMAKE_SKIP_BUILD_RPATH=ON", "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON", "-DCMAKE_INSTALL_RPATH=$ORIGIN/lib",
        "-DFETCHCONTENT_SOURCE_DIR_FMT=/c/fmt-10.2.1",
        "-DFETCHCONTENT_SOURCE_DIR_GGUFLIB=/c/gguflib-af7d88d808a7608a33723fba067036202910acb3",
        "-DFETCHCONTENT_SOURCE_DIR_JSON=/c/json-v3.11.3",
        "-DFETCHCONTENT_FULLY_DISCONNECTED=ON",
    ]
    assert plan.env == {"PYPI_RELEASE": "1", "CMAKE_BUILD_PARALLEL_LEVEL": "2",
                        "CMAKE_ARGS": " ".join(plan.cmake_args)}
    assert plan.missing_deps == []


def test_build_plan_variants():
    # a missing local copy: CMake downloads, and no FULLY_DISCONNECTED
    plan = mlxsource.build_plan(files_021(), deps_dir="/c", exists=lambda p: p.endswith("fmt-10.2.1"))
    assert "-DFETCHCONTENT_FULLY_DISCONNECTED=ON" not in plan.cmake_args
    assert [d.name for d in plan.missing_deps] == ["gguflib", "json"]
    # macOS: no rpath fix, no BLAS vendor, metal_cpp is a dependency
    mac = mlxsource.build_plan(files_021(), system="Darwin")
    assert not any("RPATH" in a or "BLA_VENDOR" in a for a in mac.cmake_args)
    assert "metal_cpp" in [d.name for d in mac.deps]
    # from a5ac9244c MLX adds \$ORIGIN/lib as a link option, which the loader
    # never expands ($$ORIGIN): the fix is still needed (a 0.29.2 wheel loaded 0.29.3's library)
    files = dict(files_021(), **{"python/src/CMakeLists.txt": PY_027})
    assert mlxsource.RPATH_ARGS == [a for a in mlxsource.build_plan(files).cmake_args if "RPATH" in a]
    # once MLX builds with its install rpath itself (0.31-0.32), no rpath arguments
    files = dict(files_021(), **{"python/src/CMakeLists.txt": PY_032})
    assert not any("RPATH" in a for a in mlxsource.build_plan(files).cmake_args)
    # OpenBLAS on request
    assert "-DBLA_VENDOR=OpenBLAS" in mlxsource.build_plan(files_021(), blas="openblas").cmake_args
    # the newer layout: version.h, nanobind fetched by CMake
    newer = {"mlx/version.h": "#define MLX_VERSION_MAJOR 0\n#define MLX_VERSION_MINOR 32\n#define MLX_VERSION_PATCH 1\n",
             "CMakeLists.txt": "FetchContent_Declare(\n nanobind\n GIT_REPOSITORY https://github.com/wjakob/nanobind.git\n"
                               " GIT_TAG v2.13.0\n GIT_SHALLOW TRUE)\n",
             "pyproject.toml": '[build-system]\nrequires = ["setuptools>=80", "cmake>=3.25"]\n'}
    plan = mlxsource.build_plan(newer)
    assert (plan.version, plan.nanobind, plan.cmake_min) == ("0.32.1", "cmake:v2.13.0", (3, 25))
    # a pure-Python tree needs no toolchain and no CMake arguments
    pure = mlxsource.build_plan({"setup.py": 'get_version("0.1.0")'})
    assert not pure.native and pure.cmake_args == [] and pure.env == {"PYPI_RELEASE": "1"}
    with pytest.raises(mlxsource.SourceError, match="cannot tell the MLX version"):
        mlxsource.build_plan({"setup.py": "setup()"})


needs_mlx = pytest.mark.skipif(not os.path.isdir(MLX_GIT), reason=f"MLX's git directory is not at {MLX_GIT} "
                                                                  "(set MLX_ASV_TEST_MLX_GIT)")


@pytest.mark.slow
@needs_mlx
@pytest.mark.parametrize("ref,version,nanobind,rpath", [
    ("v0.21.1", "0.21.1", "2.2.0", True),
    ("f110357aa^", "0.21.1", "2.2.0", True),   # the last commit on nanobind 2.2.0
    ("f110357aa", "0.21.1", "2.4.0", True),    # "Bump nanobind to 2.4 + fix (#1710)" = v0.22.0~40
    ("v0.22.0", "0.22.0", "2.4.0", True),
    ("v0.23.2", "0.23.2", "2.4.0", True),
    ("v0.25.2", "0.25.2", "2.4.0", True),
    ("a5ac9244c^", "0.26.1", "2.4.0", True),   # the last commit with only the macOS rpath
    ("a5ac9244c", "0.26.1", "2.4.0", True),    # "fix linux linking error (#2248)": \$ORIGIN as a link option
    ("v0.29.2", "0.29.2", "2.4.0", True),      # ... which the loader never expands ($$ORIGIN)
    ("v0.32.1", "0.32.1", "cmake:v2.13.0", False),  # BUILD_WITH_INSTALL_RPATH: MLX's own rpath works
])
def test_build_plan_on_mlx_history(ref, version, nanobind, rpath):
    sha = mlxsource.resolve(MLX_GIT, ref)
    plan = mlxsource.build_plan(mlxsource.read_files(MLX_GIT, sha), system="Linux")
    assert (plan.version, plan.nanobind) == (version, nanobind)
    assert ("-DCMAKE_INSTALL_RPATH=$ORIGIN/lib" in plan.cmake_args) == rpath
    assert plan.env["PYPI_RELEASE"] == "1"
    names = {d.name: d.tag for d in plan.deps}
    if mlxsource.version_key(version) < (0, 26, 0):
        assert names == {"json": "v3.11.3", "fmt": "10.2.1", "gguflib": "af7d88d808a7608a33723fba067036202910acb3"}


@pytest.mark.slow
@needs_mlx
def test_nanobind_boundary_is_f110357aa():
    """The first commit whose pyproject pins nanobind 2.4.0 is f110357aa, 40 commits before v0.22.0."""
    chain = mlxsource.first_parent_range(MLX_GIT, "v0.21.1", "v0.22.0")
    pins = [mlxsource.nanobind_of(mlxsource.read_files(MLX_GIT, s, ("pyproject.toml", "CMakeLists.txt")))
            for s in chain]
    first = pins.index("2.4.0")
    assert set(pins[:first]) == {"2.2.0"} and set(pins[first:]) == {"2.4.0"}
    assert chain[first].startswith("f110357aa")
    assert len(chain) - 1 - first == 40


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MLX_ASV_REAL_BUILD") != "1",
                    reason="a real MLX build takes minutes of CPU (docs/source-builds.md): set MLX_ASV_REAL_BUILD=1 (and MLX_ASV_SOURCE)")
def test_real_build_of_an_mlx_tag(tmp_path):
    """Build MLX_ASV_REAL_BUILD_TAG (default v0.22.0, no Linux wheel) from MLX_ASV_SOURCE, install it
    into a fresh venv, import it and run one op; the wheel must be self-contained (the build tree is gone)."""
    source = os.environ.get("MLX_ASV_SOURCE") or MLX_GIT
    tag = os.environ.get("MLX_ASV_REAL_BUILD_TAG", "v0.22.0")
    env = dict(os.environ)
    wheel = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "install.py"), "--build-only", "--source",
                            source, "--commit", tag], capture_output=True, text=True, env=env, timeout=7200)
    assert wheel.returncode == 0, wheel.stderr
    path = wheel.stdout.strip().splitlines()[-1]
    shutil.rmtree(os.path.join(mlxsource.cache_dir(env), "build"), ignore_errors=True)
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(str(target))
    py = str(target / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", path], check=True)
    out = subprocess.run([py, "-c", "import mlx.core as mx; print(mx.__version__, mx.softmax(mx.array([1.0, 2.0])))"],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == tag.lstrip("v")


def test_a_native_build_hands_cmake_the_build_interpreter(tmp_path, monkeypatch):
    """CMake's FindPython takes the first python3 on PATH unless told; MLX finds
    nanobind through that interpreter, so a build must name the build
    environment's (measured here: pyenv's shim was found, without nanobind,
    and v0.22.0's build stopped at find_package(nanobind))."""
    seen = {}
    monkeypatch.setattr(mlxsource, "build_python", lambda requires, environ, log: "/envs/b/bin/python")
    monkeypatch.setattr(mlxsource, "export_tree", lambda repo, sha, dest: os.makedirs(dest, exist_ok=True))

    def fake_pip(cmd, env=None, **kw):
        seen["env"] = env
        out = cmd[cmd.index("-w") + 1]
        open(os.path.join(out, "mlx-0.21.1-cp311-cp311-linux_x86_64.whl"), "w").close()
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(mlxsource.subprocess, "run", fake_pip)
    plan = mlxsource.build_plan(files_021(), system="Linux", ccache=None, deps_dir=None)
    env = {"MLX_ASV_CACHE": str(tmp_path / "cache")}
    wheel, info = mlxsource._build("/repo", "a" * 40, plan, [], "reference", env, str(tmp_path / "cache"),
                                   lambda m: None)
    args = seen["env"]["CMAKE_ARGS"].split()
    assert args[:len(plan.cmake_args)] == plan.cmake_args
    assert args[-1] == "-DPython_EXECUTABLE=/envs/b/bin/python"
    assert os.path.basename(wheel) == "mlx-0.21.1-cp311-cp311-linux_x86_64.whl"


def test_a_failed_build_is_reported_by_its_telling_line():
    # the log of a real offline failure (MLX 0.29.2, gguf-tools not copied)
    lines = ["Building wheel for mlx (pyproject.toml): finished with status 'error'",
             "error: subprocess-exited-with-error",
             "fatal: unable to access 'https://github.com/antirez/gguf-tools/': Could not resolve host: github.com",
             "CMake Error at gguflib-subbuild/gguflib-populate-prefix/tmp/gguflib-populate-gitclone.cmake:39 (message):",
             "ERROR: Failed building wheel for mlx"]
    gguf = mlxsource.Dep("gguflib", "8fa6eb65236618e28fd7710a0fba565f7faa1848", "https://github.com/antirez/gguf-tools/", True)
    line = mlxsource.failure_line(lines, [gguf], "/c")
    assert "could not download gguflib 8fa6eb65" in line
    assert "/c/gguflib-8fa6eb65236618e28fd7710a0fba565f7faa1848" in line and "README" in line
    # every dependency had a copy: the first line that says something, not pip's status line
    assert mlxsource.failure_line(lines, [], "/c").startswith("fatal: unable to access")
    compile_error = ["Building wheel for mlx (pyproject.toml): finished with status 'error'",
                     "/src/mlx/ops.cpp:12:3: error: 'foo' was not declared in this scope",
                     "ERROR: Failed building wheel for mlx"]
    assert "'foo' was not declared" in mlxsource.failure_line(compile_error, [gguf], "/c")
    assert mlxsource.failure_line([], [], "/c") == "(no output)"


def _cached(tmp_path, sha, cmake_args):
    env = {"MLX_ASV_CACHE": str(tmp_path)}
    folder = mlxsource.wheel_dir(sha, env)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "mlx-0.29.2-cp311-cp311-linux_x86_64.whl"), "w"):
        pass
    with open(os.path.join(folder, "build.json"), "w") as f:
        json.dump({"cmake_args": cmake_args}, f)
    return env


def test_a_cached_wheel_of_another_recipe_is_built_again(tmp_path):
    sha = "e3d004fed980677efd1aa5af8dab0ad82293dc2e"
    old = ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_COMPILER_LAUNCHER=/usr/bin/ccache", "-DBLA_VENDOR=Generic",
           "-DFETCHCONTENT_SOURCE_DIR_FMT=/a/fmt-10.2.1"]
    env = _cached(tmp_path, sha, old)
    assert mlxsource.cached_wheel(sha, env) is not None  # no plan to compare: any wheel
    # where the sources came from and the launcher do not matter
    same = [a.replace("/a/", "/b/") for a in old if "LAUNCHER" not in a]
    assert mlxsource.cached_wheel(sha, env, same) is not None
    # the rpath fix (or another BLAS) does: not a hit
    assert mlxsource.cached_wheel(sha, env, old + mlxsource.RPATH_ARGS) is None
    assert mlxsource.cached_wheel(sha, env, [a.replace("Generic", "OpenBLAS") for a in old]) is None


def test_a_wheel_whose_rpath_points_into_the_build_folder_is_found(tmp_path):
    wheel = tmp_path / "mlx-0.29.2-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mlx/core.cpython-311-x86_64-linux-gnu.so", b"elf")
        zf.writestr("mlx/lib/libmlx.so", b"elf")
        zf.writestr("mlx/__init__.py", "")
    dumps = {"core": " 0x1d (RUNPATH)  Library runpath: [$$ORIGIN/lib:/root/.cache/mlx-asv/build/src/build/temp]\n",
             "libmlx": " 0x1 (NEEDED) Shared library: [libblas.so.3]\n"}
    seen = []

    def readelf(cmd, **kw):
        seen.append(os.path.basename(cmd[-1]))
        key = "core" if "core" in cmd[-1] else "libmlx"
        return subprocess.CompletedProcess(cmd, 0, dumps[key], "")

    stray = mlxsource.build_tree_runpath(str(wheel), "/root/.cache/mlx-asv", run=readelf)
    assert stray == ["/root/.cache/mlx-asv/build/src/build/temp"]
    assert sorted(seen) == ["core.cpython-311-x86_64-linux-gnu.so", "libmlx.so"]
    dumps["core"] = " 0x1d (RUNPATH)  Library runpath: [$$ORIGIN/lib:$ORIGIN/lib]\n"
    assert mlxsource.build_tree_runpath(str(wheel), "/root/.cache/mlx-asv", run=readelf) == []
