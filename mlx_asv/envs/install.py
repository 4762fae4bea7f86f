#!/usr/bin/env python3
"""Install one MLX release, from wheels only, into the running Python environment.

asv calls this as its ``install_command`` with the ledger commit checked out in
``{build_dir}``; the commit's ``MLX_VERSION`` file names the release.

Which distribution (the "flavour"):
- macOS: ``mlx`` (it pulls ``mlx-metal``);
- Linux CPU: ``mlx[cpu]`` from 0.26.5 on (the CPU backend became the separate
  ``mlx-cpu`` wheel), plain ``mlx`` for the older Linux wheels;
- Linux with an NVIDIA GPU: ``mlx[cuda13]`` (from 0.30.1), or ``mlx[cuda]``
  (CUDA 12; ``mlx-cuda`` 0.27.1-0.30.0, ``mlx-cuda-12`` from 0.30.1).

The flavour is detected (an NVIDIA driver means CUDA) unless MLX_ASV_FLAVOR
says: ``cpu``, ``cuda13``, ``cuda`` (CUDA 12), ``metal`` or ``plain``;
``auto`` (asv.conf.json's matrix value) or unset means detect.

A CUDA flavour for a release that has no CUDA wheels fails with one line
before anything is installed (``mlx[cuda13]==0.21.1`` would otherwise install
a CPU-only MLX: pip drops an extra the release does not define), and so does
an install after which the CUDA companion distribution is missing.

A release with no wheel for this platform fails within seconds with one line
that names the version, the platform and the nearest versions that have one;
asv records that release as failed and goes on with the others. Unless an MLX
source repository is configured ($MLX_ASV_SOURCE, or ``python tools/ledger.py
--source REPO``): then the release is built from its tag (mlx_asv/envs/mlxsource.py;
the wheel is cached per commit, so only the first install builds).

A ledger commit from MLX source (it holds MLX_SOURCE: a ``source/...`` branch
or a candidate from ``--source``) is built the same way from its MLX commit.

What was installed, a registry wheel or a source build (with its commit and
BLAS), is written into the installed package (``mlx/_mlx_asv_build.json``,
read back with ``installed_build()``) and, beside the failure log, into
``results/install-builds.tsv`` (one row per ledger commit and platform), so
that results of the same release from a wheel and from a build can be told
apart.

What is already installed is kept: where that marker names the same release
and flavour (a candidate's or a source build's wheel: the same file, by its
SHA-256), mlx.core imports at that version and a CUDA flavour's companion is
there, nothing is removed or installed. asv reinstalls whenever its config or
the ledger commit changes (a gate's own config, a release's twin, the run after
a failed install), and a reinstall is several pip calls.

Usage:
    python tools/install.py                     # version from $ASV_BUILD_DIR/MLX_VERSION
    python tools/install.py --version 0.32.4
    python tools/install.py --version 0.22.0 --dry-run
    python tools/install.py --build-only --source ~/mlx --commit v0.22.0 --wheel-dir dist   # a wheel, not installed
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys

from mlx_asv import cli

FLAVOR_ENV = "MLX_ASV_FLAVOR"
FLAVORS = ("cpu", "cuda13", "cuda", "metal", "plain")
# The matrix value of MLX_ASV_FLAVOR (asv.conf.json) that means "detect".
AUTO = "auto"
# The first release with wheels of each CUDA flavour's companion distribution.
FIRST_RELEASE = {"cuda13": "0.30.1", "cuda": "0.27.1"}
VERSION_FILE = "MLX_VERSION"
# A candidate's ledger commit (tools/ledger.py --candidate) also holds this
# file, and its wheels when it is a build rather than a release's twin.
CANDIDATE_FILE = "MLX_CANDIDATE"
# Every MLX distribution that may be installed: all are removed before a
# release is installed, so no stale backend library stays.
MLX_DISTRIBUTIONS = ("mlx", "mlx-cpu", "mlx-metal", "mlx-cuda", "mlx-cuda-12", "mlx-cuda-13")
# A ledger commit built from MLX source holds this file (tools/ledger.py).
SOURCE_FILE = "MLX_SOURCE"
# Written into the installed package: how this MLX was made (wheel or source).
BUILD_MARKER = "_mlx_asv_build.json"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class InstallError(Exception):
    pass


def vkey(version):
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def detect_flavor(system=None, environ=None):
    """The flavour for this machine: MLX_ASV_FLAVOR, else (unset or ``auto``)
    by OS and NVIDIA driver."""
    environ = os.environ if environ is None else environ
    system = system or platform.system()
    chosen = environ.get(FLAVOR_ENV, "").strip().lower()
    if chosen and chosen != AUTO:
        if chosen not in FLAVORS:
            raise InstallError(f"{FLAVOR_ENV}={chosen!r} is not one of {', '.join(FLAVORS + (AUTO,))}")
        return chosen
    if system == "Darwin":
        return "metal"
    if system == "Linux":
        nvidia = os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
        return "cuda13" if nvidia else "cpu"
    return "plain"


def requirement(version, flavor):
    """(pip requirement, distributions whose wheels must exist) for a release and flavour.

    >>> requirement("0.32.4", "cpu")
    ('mlx[cpu]==0.32.4', ['mlx', 'mlx-cpu'])
    >>> requirement("0.21.1", "cpu")
    ('mlx==0.21.1', ['mlx'])
    """
    v = vkey(version)
    if flavor == "cpu":
        if v >= (0, 26, 5):
            return f"mlx[cpu]=={version}", ["mlx", "mlx-cpu"]
        return f"mlx=={version}", ["mlx"]
    if flavor == "cuda13":
        return f"mlx[cuda13]=={version}", ["mlx", "mlx-cuda-13"]
    if flavor == "cuda":
        return f"mlx[cuda]=={version}", ["mlx", "mlx-cuda" if v <= (0, 30, 0) else "mlx-cuda-12"]
    if flavor == "metal":
        return f"mlx=={version}", ["mlx"]
    return f"mlx=={version}", ["mlx"]


def check_flavor_release(version, flavor):
    """Raise InstallError (one line) if ``flavor`` has no wheels for release ``version``
    at all: asked only of the version, so it holds where the registry can't be asked."""
    first = FIRST_RELEASE.get(flavor)
    if first and vkey(version) < vkey(first):
        req = requirement(version, flavor)[0]
        raise InstallError(
            f"MLX {version}: flavour {flavor} has no wheels before MLX {first} (the first release with "
            f"{requirement(first, flavor)[1][1]}); {req} would install a CPU-only MLX. "
            f"Benchmark {first} or newer, or another flavour ({FLAVOR_ENV})")


def companion(version, flavor):
    """The distribution that carries a CUDA flavour's backend, or None."""
    if flavor not in FIRST_RELEASE:
        return None
    return requirement(version, flavor)[1][1]


def platform_label(flavor):
    return (
        f"{platform.system().lower()} {platform.machine()} "
        f"cp{sys.version_info.major}{sys.version_info.minor} ({flavor})"
    )


def _pip(*args, capture=True):
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=capture,
        text=True,
    )


def available_versions(distribution):
    """Versions of ``distribution`` with a wheel for this interpreter and platform.

    Asks pip (so the user's index settings apply). None if pip can't tell
    (offline, old pip): then the install itself decides.
    """
    proc = _pip("index", "versions", distribution, "--only-binary=:all:")
    if proc.returncode != 0:
        if "No matching distribution" in proc.stderr:
            return []
        return None
    m = re.search(r"Available versions:\s*(.*)", proc.stdout)
    if not m:
        return None
    return [v.strip() for v in m.group(1).split(",") if v.strip()]


def nearest(version, versions):
    """The closest versions below and above ``version`` among ``versions``."""
    below = [v for v in versions if vkey(v) < vkey(version)]
    above = [v for v in versions if vkey(v) > vkey(version)]
    found = []
    if below:
        found.append(max(below, key=vkey))
    if above:
        found.append(min(above, key=vkey))
    return found


def no_wheel_message(version, flavor, distributions, availability):
    """The one line for a release that has no wheel here."""
    have = None
    for dist in distributions:
        versions = availability.get(dist)
        if versions is not None:
            have = set(versions) if have is None else have & set(versions)
    near = nearest(version, sorted(have or [], key=vkey))
    hint = f"nearest with wheels: {', '.join(near)}" if near else "no version has wheels here"
    return f"MLX {version}: no wheel for {platform_label(flavor)}; {hint}"


def check_wheels(version, flavor, distributions, lookup=available_versions):
    """Raise InstallError with the one-line message if a needed wheel is missing."""
    # one pip process per distribution, at the same time: each takes about a second
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(distributions))) as pool:
        availability = dict(zip(distributions, pool.map(lookup, distributions)))
    for dist, versions in availability.items():
        if versions is not None and version not in versions:
            raise InstallError(no_wheel_message(version, flavor, distributions, availability))


def installed_mlx_distributions():
    proc = _pip("list", "--format=freeze")
    names = set()
    for line in proc.stdout.splitlines():
        name = re.split(r"[=@ ]", line, 1)[0].strip().lower().replace("_", "-")
        if name in MLX_DISTRIBUTIONS:
            names.add(name)
    return names


def install(version, flavor=None, dry_run=False, log=print, source=None, lookup=available_versions):
    """Install release ``version`` from the registry's wheels; where it has
    none and ``source`` (an MLX repository) is given, build it from its tag."""
    flavor = detect_flavor() if flavor in (None, AUTO) else flavor
    req, distributions = requirement(version, flavor)
    check_flavor_release(version, flavor)
    wanted = {"kind": "wheel", "version": version, "requirement": req, "flavor": flavor}
    if not dry_run and already_installed(wanted, version, companion(version, flavor)):
        log(f"kept {req}: already installed here by tools/install.py (mlx.core {version})")
        return req
    try:
        check_wheels(version, flavor, distributions, lookup=lookup)
    except InstallError as e:
        if not source or flavor not in ("cpu", "metal", "plain"):
            raise
        log(f"{e}: building it from {source} (tag v{version})")
        if dry_run:
            return f"source v{version}"
        return install_source(version, source, f"v{version}", log=log)
    if dry_run:
        log(f"would install {req}")
        return req
    # Remove every MLX distribution first: the older Linux wheels ship the
    # library inside `mlx` itself, the newer ones in `mlx-cpu`/`mlx-cuda-*`,
    # so upgrading in place lets pip's removal of the old `mlx` delete the
    # library that the new companion wheel just installed (seen: 0.26.3 ->
    # 0.26.5 left no libmlx.so). Wheels come from pip's cache: this is cheap.
    remove_mlx()
    proc = _pip("install", "--only-binary=:all:", "--no-input", req)
    if proc.returncode != 0 and source and flavor in ("cpu", "metal", "plain") and re.search(
            r"No matching distribution|Could not find a version", proc.stderr):
        log(f"MLX {version}: pip found no wheel: building it from {source} (tag v{version})")
        return install_source(version, source, f"v{version}", log=log)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise InstallError(f"MLX {version}: pip could not install {req}: {tail}")
    needed = companion(version, flavor)
    if needed and needed not in installed_mlx_distributions():
        raise InstallError(f"MLX {version}: installed {req} but not {needed}, its CUDA backend "
                           f"(pip dropped the extra?): mlx_gpu would be n/a; refusing")
    check = subprocess.run(
        [sys.executable, "-c", "import mlx.core as mx; print(mx.__version__)"],
        capture_output=True,
        text=True,
    )
    got = check.stdout.strip()
    if check.returncode != 0 or vkey(got) != vkey(version):
        why = check.stderr.strip().splitlines()[-1] if check.stderr.strip() else got
        raise InstallError(f"MLX {version}: installed {req} but import gives: {why}")
    log(f"installed {req} (mlx.core {got}) for {platform_label(flavor)}")
    write_build_marker(wanted)
    return req


def install_source(version, source, ref, log=print, environ=None):
    """Build MLX commit ``ref`` of repository ``source`` into a wheel (cached
    by commit) and install it; its version must be ``version``."""
    from mlx_asv.envs import mlxsource

    try:
        repo = mlxsource.local_repo(source, environ=environ, log=log)
        wheel, info = mlxsource.build_wheel(repo, ref, environ=environ, log=log)
    except mlxsource.SourceError as e:
        raise InstallError(str(e)) from None
    if info.get("version") != version:
        raise InstallError(f"MLX {version}: the source at {ref} says {info.get('version')}; "
                           f"the ledger commit and the MLX commit disagree")
    marker = dict(info, kind="source", wheel_sha256=file_sha256(wheel))
    if already_installed({k: marker[k] for k in ("kind", "commit", "wheel_sha256")}, version):
        log(f"kept MLX {version} built from {info['commit'][:10]}: this wheel is already installed here")
        return wheel
    remove_mlx()
    proc = _pip("install", "--no-deps", "--no-input", "--force-reinstall", wheel)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise InstallError(f"MLX {version}: pip could not install the built wheel {wheel}: {tail}")
    got = _import_version()
    if got != version:
        raise InstallError(f"MLX {version}: installed the wheel built from {info['commit'][:10]} "
                           f"but import gives {got}")
    write_build_marker(marker)
    log(f"installed MLX {version} built from {info['commit'][:10]} (wheel {os.path.basename(wheel)})")
    return wheel


def _package_dir():
    proc = subprocess.run([sys.executable, "-c", "import os, mlx.core; print(os.path.dirname(mlx.core.__file__))"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def write_build_marker(info, folder=None):
    """Keep how the installed MLX was made inside its package folder."""
    folder = folder or _package_dir()
    if not folder:
        return None
    path = os.path.join(folder, BUILD_MARKER)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return path


def installed_build(folder=None):
    """How the installed MLX was made: {'kind': 'wheel'|'source', ...}, or
    None where tools/install.py did not install it. A benchmark can read the
    same file: <dirname(mlx.core.__file__)>/_mlx_asv_build.json."""
    folder = folder or _package_dir()
    try:
        with open(os.path.join(folder or "", BUILD_MARKER), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_mlx():
    folder = _package_dir()
    if folder and os.path.exists(os.path.join(folder, BUILD_MARKER)):
        os.remove(os.path.join(folder, BUILD_MARKER))
    installed = sorted(installed_mlx_distributions())
    if installed:
        _pip("uninstall", "-y", *installed)


def read_source(build_dir):
    """The ledger commit's MLX_SOURCE ({field: value}), or None."""
    try:
        with open(os.path.join(build_dir, SOURCE_FILE), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    about = {}
    for line in text.splitlines():
        field, _, value = line.partition(" ")
        if field:
            about[field] = value
    return about


def source_repo_for(about, ledger_dir=None, environ=None):
    """Where to build an MLX_SOURCE commit from: $MLX_ASV_SOURCE, the ledger's
    configured source, or the repository MLX_SOURCE names (the first that is
    a local repository holding the commit; else the first URL)."""
    from mlx_asv.envs import ledger, mlxsource

    environ = os.environ if environ is None else environ
    choices = [ledger.configured_source(ledger_dir or ledger.DEFAULT_REPO, environ), about.get("repo")]
    choices = [c for c in choices if c]
    for c in choices:
        if not mlxsource.is_url(c) and os.path.isdir(c) and subprocess.run(
                ["git", "-C", c, "cat-file", "-e", f"{about.get('commit')}^{{commit}}"],
                capture_output=True).returncode == 0:
            return c
    urls = [c for c in choices if mlxsource.is_url(c)]
    if urls:
        return urls[0]
    raise InstallError(f"MLX commit {about.get('commit', '?')[:10]}: no repository here holds it "
                       f"(tried {', '.join(choices) or 'none'}); set MLX_ASV_SOURCE to an MLX clone")


def record_build(log_path, build_dir, version, info):
    """One row per (ledger commit, platform) in install-builds.tsv beside the failure log."""
    if not log_path:
        return
    path = os.path.join(os.path.dirname(os.path.abspath(log_path)), "install-builds.tsv")
    commit = subprocess.run(["git", "-C", build_dir or ".", "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() if build_dir else ""
    key = f"{commit or '-'}\t{version}\t{platform_label(detect_flavor_quiet())}"
    detail = (f"source {info.get('commit', '?')} blas={info.get('blas', '?')}" if info.get("kind") == "source"
              else f"wheel {info.get('requirement', '')}")
    replace_row(path, key, detail)


def replace_row(path, key, value):
    """Write ``key<TAB>value`` into the TSV file ``path``, replacing the row
    of the same key (a later attempt replaces an earlier one)."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            rows = [r for r in f.read().splitlines() if r and not r.startswith(key + "\t")]
    except OSError:
        pass
    rows.append(f"{key}\t{value}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def read_candidate(build_dir):
    """The ledger commit's MLX_CANDIDATE ({field: value}, 'wheel' a list), or None for a release."""
    path = os.path.join(build_dir, CANDIDATE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    about = {"wheel": []}
    for line in lines:
        field, _, value = line.partition(" ")
        if field == "wheel":
            about["wheel"].append(value.split()[0])
        elif field:
            about[field] = value
    return about


def install_wheels(version, build_dir, wheels, log=print):
    """Install a candidate's own wheel files (kept in its ledger commit)."""
    paths = [os.path.join(build_dir, w) for w in wheels]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise InstallError(f"candidate wheel {os.path.basename(missing[0])} is missing from the ledger commit; "
                           f"add the candidate again (python tools/ledger.py --candidate ...)")
    wanted = {"kind": "wheel", "version": version, "requirement": "candidate " + " ".join(wheels),
              "sha256": [file_sha256(p) for p in paths]}
    if already_installed(wanted, version.split("+")[0], prefix=True):
        log(f"kept candidate wheels {', '.join(wheels)}: the same files are already installed here")
        return
    remove_mlx()
    proc = _pip("install", "--no-deps", "--no-input", *paths)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise InstallError(f"MLX candidate {version}: pip could not install its wheels: {tail}")
    got = _import_version()
    if got != version.split("+")[0] and not got.startswith(version.split("+")[0]):
        raise InstallError(f"MLX candidate {version}: installed its wheels but import gives {got}")
    log(f"installed candidate wheels {', '.join(wheels)} (mlx.core {got})")
    write_build_marker(wanted)


def file_sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def already_installed(wanted, version, needed=None, prefix=False):
    """True where the installed MLX is the one ``wanted`` describes, so that
    installing it again would change nothing: the build marker that this
    script wrote after its last install holds the same fields (requirement
    and flavour of a release; the files' SHA-256 of a candidate's wheels or
    a source build), mlx.core imports at ``version`` (the start of it with
    ``prefix``), and the CUDA companion distribution ``needed`` is there.
    pip or another tool changing MLX afterwards fails one of these, and
    tools/install.py's own installs remove the marker first."""
    folder = _package_dir()
    marker = installed_build(folder) if folder else None
    if not marker or any(marker.get(k) != v for k, v in wanted.items()):
        return False
    got = _import_version()
    if not (got.startswith(version) if prefix else got == version):
        return False
    return not needed or needed in installed_mlx_distributions()


def _import_version():
    check = subprocess.run(
        [sys.executable, "-c", "import mlx.core as mx; print(mx.__version__)"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        lines = check.stderr.strip().splitlines()
        return "import failed: " + (lines[-1] if lines else "(no output)")
    return check.stdout.strip()


def record_failure(log_path, version, message):
    """Keep the reason beside asv's results, which record only that the install failed.

    One row per (release, platform): a later attempt replaces the row.
    """
    if not log_path:
        return
    replace_row(log_path, f"{version}\t{platform_label(detect_flavor_quiet())}", message)


def detect_flavor_quiet():
    try:
        return detect_flavor()
    except InstallError:
        return "?"


def read_version(args):
    if args.version:
        return args.version
    build_dir = args.build_dir or os.environ.get("ASV_BUILD_DIR")
    if not build_dir:
        raise InstallError("no version: pass --version X.Y.Z or run under asv (ASV_BUILD_DIR)")
    path = os.path.join(build_dir, VERSION_FILE)
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        raise InstallError(
            f"{path} not found: asv's repo must be the release ledger (python tools/ledger.py)"
        ) from None


def build_only(args):
    """--build-only: the wheel of one MLX commit, for a candidate (CI builds a pull request's head)."""
    import shutil

    from mlx_asv.envs import ledger, mlxsource

    source = args.source or ledger.configured_source()
    if not source or not args.commit:
        raise InstallError("--build-only needs --source REPO (or MLX_ASV_SOURCE) and --commit REF")
    try:
        repo = mlxsource.local_repo(source)
        wheel, _ = mlxsource.build_wheel(repo, args.commit)
    except mlxsource.SourceError as e:
        raise InstallError(str(e)) from None
    if args.wheel_dir:
        os.makedirs(args.wheel_dir, exist_ok=True)
        wheel = shutil.copy2(wheel, args.wheel_dir)
    print(wheel)
    return 0


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--version", help="MLX release, e.g. 0.32.4 (default: $ASV_BUILD_DIR/MLX_VERSION)")
    ap.add_argument("--build-dir", help="ledger checkout holding MLX_VERSION")
    ap.add_argument("--flavor", choices=FLAVORS + (AUTO,),
                    help=f"override detection (or set {FLAVOR_ENV}; {AUTO}: detect)")
    ap.add_argument("--dry-run", action="store_true", help="check wheels, print the requirement")
    ap.add_argument("--failure-log", help="append a failed release's reason to this TSV file")
    ap.add_argument("--source", help="an MLX repository to build from where there is no wheel "
                                     "(default: $MLX_ASV_SOURCE, else python tools/ledger.py --source's)")
    ap.add_argument("--no-source", action="store_true",
                    help="wheels only: a release without one fails in one line instead of being built from source")
    ap.add_argument("--build-only", action="store_true",
                    help="with --source and --commit: build the wheel (cached), print its path, install nothing")
    ap.add_argument("--commit", help="with --build-only: the MLX commit or tag to build")
    ap.add_argument("--wheel-dir", help="with --build-only: copy the wheel here")
    args = ap.parse_args(argv)
    version = None
    from mlx_asv.envs import ledger

    try:
        if args.build_only:
            return build_only(args)
        version = read_version(args)
        build_dir = args.build_dir or os.environ.get("ASV_BUILD_DIR")
        candidate = read_candidate(build_dir) if build_dir and not args.version else None
        source = read_source(build_dir) if build_dir and not args.version else None
        if source:
            # MLX's own commit (a source/ branch, or a candidate built from source)
            repo = args.source or source_repo_for(source)
            install_source(version, repo, source["commit"])
        elif candidate and candidate["wheel"]:
            install_wheels(version, build_dir, candidate["wheel"])
        else:
            # A release, or a release's twin (same wheels, another commit).
            install(version, flavor=args.flavor, dry_run=args.dry_run,
                    source=None if args.no_source else (args.source or ledger.configured_source()))
        if not args.dry_run:
            record_build(args.failure_log, build_dir, version, installed_build() or {})
    except InstallError as e:
        print(f"install.py: {e}", file=sys.stderr)
        if version:
            record_failure(args.failure_log, version, str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
