#!/usr/bin/env python3
"""Install one torch version into the running Python environment, the build this machine wants.

The torch matrix (``asv.torch.conf.json``, tools/torch_matrix.py) calls this
as the first of its ``install_command``\\ s, with the torch version in the
matrix variable ``MLX_ASV_TORCH`` (a build variable: one asv environment per
version). asv.conf.json, the default, never calls it: there asv installs its
one pinned ``torch==2.13.0`` itself.

Which build, and what it costs (one download per version; pip's cache keeps it):

- macOS: the registry's wheel (CPU + MPS), about 60-80 MB on arm64. Intel
  Macs have no wheels after torch 2.2.2: a newer version fails in one line.
- Linux with an NVIDIA GPU (the MLX flavour is a CUDA one, see tools/install.py):
  the registry's wheel, a CUDA build: ~0.8 GB for the wheel plus ~2.5-3 GB of
  ``nvidia-*`` packages (cuBLAS, cuDNN, NCCL, ...); wanted there, for
  ``torch_cuda``.
- Linux without one (flavour ``cpu``): the CPU build, ``torch==X+cpu``, about
  0.2 GB, from PyTorch's CPU index (``MLX_ASV_TORCH_CPU_INDEX``, default
  https://download.pytorch.org/whl/cpu, asked only if it answers before ``index_reachable``'s timeout)
  or from a local copy that pip already finds (``find-links``). The registry
  has only the CUDA build (and ``import torch`` fails without the ``nvidia-*``
  packages), so where no CPU build can be reached this **refuses** in one line,
  naming the download, unless ``MLX_ASV_TORCH_CUDA=1`` says to fetch the
  CUDA build anyway. Which build was installed is kept in
  ``results/torch-installs.tsv`` (a CUDA build timed on CPU is not the CPU build).
- elsewhere (Windows, ...): the registry's wheel.

A version with no wheel for this platform and Python fails within seconds in
one line naming the nearest versions that have one; the reason goes to
``--failure-log`` (results/install-failures.tsv, rows ``torch X``), asv records
that environment's results as failed and goes on with the others.

Run again in an environment that has the version already (asv's install runs
for every MLX release), it does nothing.

Usage:
    python tools/torch_install.py                      # version from $MLX_ASV_TORCH
    python tools/torch_install.py --version 2.7.1 --dry-run   # what would be installed, and its size
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import urllib.error
import urllib.request


from mlx_asv.envs import install  # the flavour detection and the TSV rows
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TORCH_VAR = "MLX_ASV_TORCH"
# Opt-in: fetch the registry's CUDA build on a machine without an NVIDIA GPU.
CUDA_OPT_IN = "MLX_ASV_TORCH_CUDA"
CPU_INDEX_VAR = "MLX_ASV_TORCH_CPU_INDEX"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# What each build costs to download, for the messages (measured or published sizes).
COST = {
    "cpu": "~0.2 GB",
    "cuda": "~0.8 GB for the torch wheel + ~2.5-3 GB of nvidia-* packages (CUDA build)",
    "macos": "~60-80 MB",
    "registry": "the registry's wheel",
}


class TorchInstallError(Exception):
    pass


def public(version):
    """'2.2.2+cpu' -> '2.2.2'."""
    return version.split("+", 1)[0]


def vkey(version):
    return tuple(int(p) for p in re.findall(r"\d+", public(version))[:3])


def platform_label():
    return (f"{platform.system().lower()} {platform.machine()} "
            f"cp{sys.version_info.major}{sys.version_info.minor}")


def index_reachable(url, timeout=3.0):
    """(True, '') if the index at ``url`` answers, else (False, why)."""
    if not url:
        return False, "no CPU index configured"
    if url.startswith("file://"):
        path = url[len("file://"):]
        return (True, "") if os.path.isdir(path) else (False, f"{path} does not exist")
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=timeout) as r:
            return (r.status < 400), ("" if r.status < 400 else f"HTTP {r.status}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        return False, str(getattr(e, "reason", e)).splitlines()[0][:80]


def _pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def available(extra_index=None, pip=None):
    """torch versions with a wheel for this interpreter (local labels kept:
    '2.13.0+cpu'), as pip sees them (its find-links and indexes), or None
    where pip can't tell."""
    pip = pip or _pip
    args = ["index", "versions", "torch", "--only-binary=:all:"]
    if extra_index:
        args += ["--extra-index-url", extra_index]
    proc = pip(*args)
    if proc.returncode != 0:
        return [] if "No matching distribution" in proc.stderr else None
    m = re.search(r"Available versions:\s*(.*)", proc.stdout)
    if not m:
        return None
    return [v.strip() for v in m.group(1).split(",") if v.strip()]


def nearest(version, versions):
    versions = sorted({public(v) for v in versions}, key=vkey)
    below = [v for v in versions if vkey(v) < vkey(version)]
    above = [v for v in versions if vkey(v) > vkey(version)]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def build_kind(system=None, machine=None, flavor=None):
    """Which torch build this machine wants: 'cpu' (Linux x86-64 without an
    NVIDIA GPU), 'cuda' (Linux with one), 'macos', or 'registry' (the rest)."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    if system == "Darwin":
        return "macos"
    if system == "Linux":
        flavor = flavor or install.detect_flavor(system="Linux")
        if flavor in ("cuda", "cuda13"):
            return "cuda"
        if machine in ("x86_64", "amd64"):
            return "cpu"
    return "registry"


def plan(version, kind, versions, cpu_index=None, cpu_index_why="", allow_cuda=False):
    """(pip arguments, a one-line description with the download size) for
    ``torch==version`` on a machine of ``kind`` (build_kind), given the
    ``versions`` pip can see (None: unknown). Raises TorchInstallError (one
    line) where there is no wheel, or where only a CUDA build could be had on
    a machine without a GPU and ``allow_cuda`` is not set."""
    extra = ["--extra-index-url", cpu_index] if cpu_index else []
    known = None if versions is None else set(versions)
    if kind == "cpu":
        cpu = f"{version}+cpu"
        if known is None or cpu in known:
            return (["torch==" + cpu] + extra,
                    f"torch {cpu}: the CPU build, {COST['cpu']}" + (f", from {cpu_index} or a local copy"
                                                                    if cpu_index else ", a local copy"))
        if version in known:
            if allow_cuda:
                return ([f"torch=={version}"],
                        f"torch {version}: the registry's CUDA build on a machine without an NVIDIA GPU "
                        f"({CUDA_OPT_IN}=1): {COST['cuda']}")
            reach = f"{cpu_index or CPU_INDEX} is not reachable ({cpu_index_why})" if not cpu_index \
                else f"{cpu_index} has no {cpu}"
            raise TorchInstallError(
                f"torch {version}: no CPU build for {platform_label()} here ({reach}); the registry has only "
                f"the CUDA build, {COST['cuda']}: refusing on a machine without an NVIDIA GPU. "
                f"Set {CUDA_OPT_IN}=1 to download it anyway, or make a CPU index reachable "
                f"({CPU_INDEX_VAR})")
    elif known is not None and version not in {public(v) for v in known}:
        pass  # falls through to the no-wheel line below
    else:
        return [f"torch=={version}"], f"torch {version}: {COST[kind]}"
    near = nearest(version, known or [])
    hint = f"nearest with wheels: {', '.join(near)}" if near else "no version has wheels here"
    raise TorchInstallError(f"torch {version}: no wheel for {platform_label()}; {hint}")


def installed_version():
    """The torch distribution's version in this environment, or None (read
    from its metadata: torch is not imported)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def torch_install(version, environ=None, dry_run=False, log=print, pip=None, kind=None):
    """Install ``torch==version`` (the build :func:`build_kind` picks); returns
    what is installed ('2.7.1+cpu'), or the pip arguments with ``dry_run``."""
    environ = os.environ if environ is None else environ
    pip = pip or _pip
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version or ""):
        raise TorchInstallError(f"{TORCH_VAR}={version!r} is not a torch release like 2.7.1")
    have = installed_version()
    if have and public(have) == version and not dry_run:
        log(f"torch {have} already installed")
        return have
    if kind is None:
        try:
            kind = build_kind(flavor=install.detect_flavor(environ=environ))
        except install.InstallError as e:
            raise TorchInstallError(str(e)) from None
    cpu_index, why = None, ""
    if kind == "cpu":
        url = environ.get(CPU_INDEX_VAR, CPU_INDEX)
        ok, why = index_reachable(url)
        cpu_index = url if ok else None
    versions = available(cpu_index, pip=pip)
    args, what = plan(version, kind, versions, cpu_index, why, allow_cuda=environ.get(CUDA_OPT_IN) == "1")
    if dry_run:
        log(f"would install {what}")
        return args
    log(f"installing {what}")
    proc = pip("install", "--no-input", "--only-binary=torch", *args)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TorchInstallError(f"torch {version}: pip could not install {args[0]}: {tail}")
    got = installed_version()
    if not got or public(got) != version:
        raise TorchInstallError(f"torch {version}: pip installed {args[0]} but the environment has torch {got}")
    log(f"installed torch {got}")
    return got


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--version", help=f"torch release (default: ${TORCH_VAR})")
    ap.add_argument("--dry-run", action="store_true", help="say what would be installed and its size")
    ap.add_argument("--failure-log", help="keep a failure's reason in this TSV file (rows 'torch X')")
    args = ap.parse_args(argv)
    version = args.version or os.environ.get(TORCH_VAR, "").strip()
    try:
        if not version:
            raise TorchInstallError(f"no torch version: pass --version X or set {TORCH_VAR} "
                                    f"(asv.torch.conf.json's matrix does)")
        got = torch_install(version, dry_run=args.dry_run)
        if args.failure_log and not args.dry_run:
            path = os.path.join(os.path.dirname(os.path.abspath(args.failure_log)), "torch-installs.tsv")
            install.replace_row(path, f"torch {version}\t{platform_label()}", f"torch {got}")
    except TorchInstallError as e:
        print(f"torch_install.py: {e}", file=sys.stderr)
        if args.failure_log and version:
            install.replace_row(args.failure_log, f"torch {version}\t{platform_label()}", str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
