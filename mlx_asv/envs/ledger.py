#!/usr/bin/env python3
"""Build and update the release ledger: the git repository asv benchmarks.

asv benchmarks commits of a repository. MLX releases ship wheels, so instead
of MLX's own history (a source build per version) asv is pointed at a small
local repository, ``ledger/``, with one commit per MLX release, in version
order on branch ``main``:

- each commit holds one file, ``MLX_VERSION``, which ``tools/install.py``
  reads to install that release's wheel;
- it is tagged like MLX's tag (``v0.21.1``) and dated on the release date, so
  ``asv run v0.20.0..v0.24.1``, ``HASHFILE:``, ``asv publish`` (releases on
  the x-axis, tags shown) and ``asv find`` work unchanged.

Commits are made with fixed identities and the release dates, so their hashes
depend only on the release table: building twice changes nothing, a new
release appends one commit, and every machine builds the same hashes (results
from different machines line up).

The table is ``tools/mlx_releases.tsv`` (works offline). Releases newer than
its last row are added from the package registry when it can be reached.

Source mode (MLX's own commits, built by tools/install.py; see mlx_asv/envs/mlxsource.py):
branch ``source/NAME`` holds MLX's first-parent commits from release A to B,
parented on the ledger's A, so ``asv run v0.21.1..source/NAME``, ``asv find``,
``tools/gate.py`` and ``tools/mlxbisect.py`` work on them while ``main`` stays
the releases; a pull request's head becomes a candidate built from source.

Usage:
    python tools/ledger.py              # build or update (registry if reachable)
    python tools/ledger.py --offline    # from the shipped table only
    python tools/ledger.py --list       # print version, date, ledger hash
    python tools/ledger.py --source ~/mlx                          # build releases without wheels from it
    python tools/ledger.py --source ~/mlx --commits v0.21.1..v0.25.2   # branch source/v0.21.1-v0.25.2
    python tools/ledger.py --candidate pr-123 --base v0.32.4 --source ~/mlx --commit pull/123/head
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_REPO = os.path.join(ROOT, "ledger")
DEFAULT_TABLE = os.path.join(ROOT, "tools", "mlx_releases.tsv")
BRANCH = "main"
VERSION_FILE = "MLX_VERSION"
IDENTITY = "mlx-asv ledger <ledger@mlx-asv.invalid>"
REGISTRY_URL = "https://pypi.org/pypi/mlx/json"
# The asv plugin asks the registry at most this often (seconds).
REFRESH_INTERVAL = 6 * 3600
STAMP = "mlx-asv-registry-checked"


class LedgerError(Exception):
    pass


def version_key(version):
    return tuple(int(p) for p in version.lstrip("v").split("."))


def is_release(version):
    return re.fullmatch(r"\d+\.\d+\.\d+", version) is not None


class Release:
    __slots__ = ("version", "date")

    def __init__(self, version, date):
        self.version = version
        self.date = date  # aware datetime

    @property
    def tag(self):
        return "v" + self.version

    def __repr__(self):
        return f"Release({self.version!r}, {self.date.isoformat()!r})"

    def __eq__(self, other):
        return (self.version, self.date) == (other.version, other.date)


def read_table(path=DEFAULT_TABLE):
    """The releases of the shipped table, in version order."""
    releases = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#") or line.startswith("tag\t"):
                continue
            fields = line.split("\t")
            try:
                tag, date = fields[0], fields[1]
                version = tag[1:] if tag.startswith("v") else tag
                if not is_release(version):
                    raise ValueError(f"tag {tag!r} is not vX.Y.Z")
                when = dt.datetime.fromisoformat(date)
                if when.tzinfo is None:
                    raise ValueError(f"date {date!r} has no time zone")
            except (IndexError, ValueError) as e:
                raise LedgerError(f"{path}:{lineno}: bad row ({e}); fix the release table") from None
            releases[version] = Release(version, when)
    return sorted(releases.values(), key=lambda r: version_key(r.version))


def registry_releases(timeout=10.0, url=REGISTRY_URL):
    """{version: first upload date} from the package registry, or None if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.load(resp)
    except (OSError, ValueError):
        return None
    found = {}
    for version, files in data.get("releases", {}).items():
        times = [f.get("upload_time_iso_8601") for f in files if f.get("upload_time_iso_8601")]
        if is_release(version) and times:
            first = min(times)
            when = dt.datetime.fromisoformat(first.replace("Z", "+00:00")).replace(microsecond=0)
            found[version] = when.astimezone(dt.timezone.utc)
    return found


def extend_with_registry(releases, registry):
    """Append registry releases newer than the table's newest (the ledger only grows at its end)."""
    newest = version_key(releases[-1].version) if releases else (0, 0, 0)
    extra = sorted(
        (Release(v, when) for v, when in registry.items() if version_key(v) > newest),
        key=lambda r: version_key(r.version),
    )
    return releases + extra


def git(repo, *args, input=None, check=True):
    env = dict(os.environ, GIT_DIR=repo, LC_ALL="C")
    proc = subprocess.run(
        ["git", *args], input=input, capture_output=True, text=True, env=env
    )
    if check and proc.returncode != 0:
        raise LedgerError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def _fast_import_stream(releases, ref):
    name, email = IDENTITY.split(" <")
    lines = []
    for i, rel in enumerate(releases, 1):
        stamp = int(rel.date.timestamp())
        offset = rel.date.utcoffset()
        minutes = int(offset.total_seconds() // 60)
        tz = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        who = f"{name} <{email} {stamp} {tz}"
        message = f"MLX {rel.tag}\n"
        content = rel.version + "\n"
        lines += [
            f"commit {ref}",
            f"mark :{i}",
            f"author {who}",
            f"committer {who}",
            f"data {len(message.encode())}",
            message.rstrip("\n"),
        ]
        if i > 1:
            lines.append(f"from :{i - 1}")
        lines += [
            "deleteall",
            f"M 100644 inline {VERSION_FILE}",
            f"data {len(content.encode())}",
            content.rstrip("\n"),
            "",
        ]
    return "\n".join(lines) + "\n"


def build(releases, repo=DEFAULT_REPO, log=print):
    """Make ``repo`` hold exactly ``releases`` (a ledger may only grow).

    Returns the list of (release, commit hash) in order.
    """
    if not releases:
        raise LedgerError("no releases to build the ledger from")
    if not os.path.isdir(os.path.join(repo, "objects")):
        os.makedirs(repo, exist_ok=True)
        git(repo, "init", "--bare", "-q")
        git(repo, "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
    candidate = "refs/ledger/candidate"
    git(repo, "fast-import", "--quiet", "--force", input=_fast_import_stream(releases, candidate))
    hashes = git(repo, "rev-list", "--first-parent", "--reverse", candidate).split()
    if len(hashes) != len(releases):
        raise LedgerError(f"ledger {repo}: expected {len(releases)} commits, found {len(hashes)}")
    tip = hashes[-1]
    current = git(repo, "rev-parse", "-q", "--verify", f"refs/heads/{BRANCH}", check=False).strip()
    if current and current not in hashes:
        raise LedgerError(
            f"ledger {repo} has history the release table does not produce "
            f"(was a date or release changed?); move it aside and run tools/ledger.py again "
            f"(results under the old commit hashes will not be shown)"
        )
    updates = [f"update refs/heads/{BRANCH} {tip}"]
    existing_tags = {}
    for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags").splitlines():
        ref, obj = line.split()
        existing_tags[ref] = obj
    added = 0
    for rel, commit in zip(releases, hashes):
        ref = f"refs/tags/{rel.tag}"
        if existing_tags.get(ref) != commit:
            updates.append(f"update {ref} {commit}")
            added += 1
    git(repo, "update-ref", "--stdin", input="\n".join(updates) + "\n")
    git(repo, "update-ref", "-d", candidate)
    if current != tip:
        before = hashes.index(current) + 1 if current else 0
        log(f"ledger: {len(hashes) - before} release(s) added, newest {releases[-1].tag} ({repo})")
    return list(zip(releases, hashes))


def newest_tag(repo=DEFAULT_REPO):
    """The newest release tag of the ledger ('v0.32.4'), or '(none)'."""
    tags = git(repo, "tag", "--list", "v*", check=False).split()
    tags = [t for t in tags if is_release(t[1:])]
    return max(tags, key=version_key) if tags else "(none)"


# --------------------------------------------------------------------------
# Candidates: MLX builds that are not releases
# --------------------------------------------------------------------------

CANDIDATE_FILE = "MLX_CANDIDATE"
CANDIDATE_PREFIX = "candidate/"


def wheel_version(filename):
    """'mlx-0.32.5.dev20260101+g1234-cp311-...whl' -> '0.32.5.dev20260101+g1234'."""
    m = re.match(r"^([A-Za-z0-9_.]+?)-([0-9][^-]*)-", os.path.basename(filename))
    if not m or not filename.endswith(".whl"):
        raise LedgerError(f"{filename}: not a wheel file name (NAME-VERSION-...whl)")
    return m.group(1).replace("_", "-").lower(), m.group(2)


def add_candidate(name, base, wheels=(), same_as=None, repo=DEFAULT_REPO, log=print, _source=None):
    """Add a candidate: a commit on branch ``candidate/NAME`` whose parent is
    the ledger commit of release ``base`` (so ``asv run BASE..candidate/NAME``
    and ``asv continuous BASE candidate/NAME`` work, and ``main`` stays the
    releases). It holds ``MLX_VERSION``, ``MLX_CANDIDATE`` (what it is) and
    either the wheel files themselves (installed by tools/install.py from
    asv's checkout) or, for ``same_as``, nothing else: it installs that
    release, under another commit (the A/A case of studies/calibrate.py).
    Returns the commit hash.
    """
    import hashlib

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise LedgerError(f"candidate name {name!r}: use letters, digits, '.', '_' and '-'")
    base_tag = base if base.startswith("v") else "v" + base
    parent = git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{base_tag}^{{commit}}", check=False).strip()
    if not parent:
        raise LedgerError(f"release {base_tag} is not in the ledger (newest: {newest_tag(repo)}); "
                          f"python tools/ledger.py --list shows them")
    if _source is None and bool(wheels) == bool(same_as):
        raise LedgerError("a candidate is either --wheel FILE [--wheel FILE ...], --same-as RELEASE "
                          "or --source REPO --commit REF")
    files = {}
    dated = None
    if _source is not None:
        label, mcommit, version = _source
        about = f"name {name}\nbase {base_tag}\nkind source\ncommit {mcommit.sha}\n"
        files[SOURCE_FILE] = source_text(label, mcommit, version).encode()
        dated = _who(mcommit.date).split("> ", 1)[1]
    elif same_as:
        twin = same_as.lstrip("v")
        if not git(repo, "rev-parse", "-q", "--verify", f"refs/tags/v{twin}", check=False).strip():
            raise LedgerError(f"release v{twin} is not in the ledger (newest: {newest_tag(repo)})")
        version = twin
        about = f"name {name}\nbase {base_tag}\nkind release-twin\nsame-as v{twin}\n"
    else:
        about = f"name {name}\nbase {base_tag}\nkind wheel\n"
        version = None
        for path in wheels:
            if not os.path.isfile(path):
                raise LedgerError(f"{path}: no such wheel file")
            dist, v = wheel_version(path)
            with open(path, "rb") as f:
                content = f.read()
            files[os.path.basename(path)] = content
            about += f"wheel {os.path.basename(path)} {hashlib.sha256(content).hexdigest()}\n"
            if dist == "mlx":
                version = v
        if version is None:
            raise LedgerError("no mlx-*.whl among the wheels (companion wheels such as mlx_cpu go beside it)")
    files[VERSION_FILE] = (version + "\n").encode()
    files[CANDIDATE_FILE] = about.encode()
    # One commit through a temporary index: blobs, tree, commit, branch.
    index = os.path.join(repo, "candidate-index")
    env = dict(os.environ, GIT_DIR=repo, GIT_INDEX_FILE=index, LC_ALL="C")
    try:
        subprocess.run(["git", "read-tree", "--empty"], env=env, check=True)
        for fname, content in sorted(files.items()):
            blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=content, env=env,
                                  capture_output=True, check=True).stdout.decode().strip()
            subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{fname}"],
                           env=env, check=True)
        tree = subprocess.run(["git", "write-tree"], env=env, capture_output=True, check=True).stdout.decode().strip()
    finally:
        if os.path.exists(index):
            os.remove(index)
    who, email = IDENTITY.split(" <")
    cenv = dict(env, GIT_AUTHOR_NAME=who, GIT_AUTHOR_EMAIL=email.rstrip(">"),
                GIT_COMMITTER_NAME=who, GIT_COMMITTER_EMAIL=email.rstrip(">"))
    cenv.pop("GIT_INDEX_FILE")
    if dated:  # a source candidate: the MLX commit's date, so its hash is the same everywhere
        cenv.update(GIT_AUTHOR_DATE=dated, GIT_COMMITTER_DATE=dated)
    commit = subprocess.run(["git", "commit-tree", tree, "-p", parent, "-m", f"MLX candidate {name} (base {base_tag})"],
                            env=cenv, capture_output=True, check=True).stdout.decode().strip()
    git(repo, "update-ref", f"refs/heads/{CANDIDATE_PREFIX}{name}", commit)
    log(f"ledger: candidate {CANDIDATE_PREFIX}{name} = {commit[:8]} (MLX {version}, on {base_tag})")
    return commit


def candidates(repo=DEFAULT_REPO):
    """[(branch, commit, MLX_CANDIDATE text)] of the ledger's candidates."""
    return [(branch, commit, git(repo, "show", f"{commit}:{CANDIDATE_FILE}", check=False))
            for branch, commit in _branches(CANDIDATE_PREFIX, repo)]


def _branches(prefix, repo):
    """[(branch, commit)] of the ledger's branches under ``prefix`` (candidate/, source/)."""
    refs = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", f"refs/heads/{prefix}",
                check=False)
    return [tuple(line.split()) for line in refs.splitlines()]


def remove_candidate(name, repo=DEFAULT_REPO):
    ref = f"refs/heads/{CANDIDATE_PREFIX}{name}"
    if not git(repo, "rev-parse", "-q", "--verify", ref, check=False).strip():
        raise LedgerError(f"no candidate {name!r} (python tools/ledger.py --list shows them)")
    git(repo, "update-ref", "-d", ref)


# --------------------------------------------------------------------------
# Source mode: MLX's own commits, built from source by tools/install.py
# --------------------------------------------------------------------------

SOURCE_FILE = "MLX_SOURCE"
SOURCE_PREFIX = "source/"
# In the ledger's git directory: the MLX repository that tools/install.py
# builds from when a commit has no wheel (a release without one, 0.22.0-0.25.1
# on Linux); MLX_ASV_SOURCE in the environment overrides it.
SOURCE_CONFIG = "mlx-asv-source"


def source_text(label, commit, version):
    """MLX_SOURCE: where the commit comes from and what it is."""
    return (f"repo {label}\ncommit {commit.sha}\nversion {version}\n"
            f"date {commit.date.isoformat()}\ntitle {commit.title}\n")


def read_source_text(text):
    about = {}
    for line in (text or "").splitlines():
        field, _, value = line.partition(" ")
        if field:
            about[field] = value
    return about


def set_source(source, repo=DEFAULT_REPO):
    """Remember ``source`` (a local MLX repository or URL) for install.py's source builds."""
    from mlx_asv.envs import mlxsource

    value = source if mlxsource.is_url(source) else os.path.abspath(os.path.expanduser(source))
    with open(os.path.join(repo, SOURCE_CONFIG), "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value


def configured_source(repo=DEFAULT_REPO, environ=None):
    """The MLX repository source builds use: $MLX_ASV_SOURCE, else the ledger's setting, else None."""
    environ = os.environ if environ is None else environ
    if environ.get("MLX_ASV_SOURCE"):
        return environ["MLX_ASV_SOURCE"]
    try:
        with open(os.path.join(repo, SOURCE_CONFIG), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _who(date):
    name, email = IDENTITY.split(" <")
    stamp = int(date.timestamp())
    minutes = int(date.utcoffset().total_seconds() // 60)
    tz = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return f"{name} <{email} {stamp} {tz}"


def _data(text):
    raw = text.encode()
    return [f"data {len(raw)}", text]


def source_range_name(start, end):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{start}-{end}").strip("-")


def add_source_range(source, start, end, name=None, repo=DEFAULT_REPO, record_as=None, log=print):
    """Add MLX's commits ``start`` (a release tag the ledger has) .. ``end``
    as branch ``source/NAME``: one ledger commit per MLX commit, in MLX's
    first-parent order, the first (MLX's ``start`` itself, so that both ends
    of a bisection are built alike) parented on the ledger commit of release
    ``start``. Each holds MLX_VERSION (the version MLX's source says there)
    and MLX_SOURCE (repo, commit, version, date, title); it is dated on the
    MLX commit's committer date, by the ledger's fixed identity, so the hashes
    depend only on MLX's commits and ``record_as`` (default: ``source`` as
    given; name the same URL on every machine for the same hashes).
    Returns [(ledger commit, MLX sha, version)].
    """
    from mlx_asv.envs import mlxsource

    try:
        mrepo = mlxsource.local_repo(source, log=log)
        tag = start if start.startswith("v") else "v" + start
        parent = git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}", check=False).strip()
        if not parent:
            raise LedgerError(f"a source range starts at a release of the ledger: {tag} is not one "
                              f"(newest: {newest_tag(repo)})")
        shas = mlxsource.first_parent_range(mrepo, tag if mlxsource.git(
            mrepo, "rev-parse", "-q", "--verify", tag, check=False).strip() else start, end)
        commits = mlxsource.commit_info(mrepo, shas)
        versions = [mlxsource.version_from_source(mlxsource.read_files(mrepo, s, ("setup.py", "mlx/version.h")))
                    for s in shas]
    except mlxsource.SourceError as e:
        raise LedgerError(str(e)) from None
    name = name or source_range_name(start, end)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise LedgerError(f"source range name {name!r}: use letters, digits, '.', '_' and '-'")
    label = record_as or (source if mlxsource.is_url(source) else os.path.abspath(source))
    tmp = "refs/ledger/source-import"
    lines = []
    for i, (c, version) in enumerate(zip(commits, versions), 1):
        who = _who(c.date)
        lines += [f"commit {tmp}", f"mark :{i}", f"author {who}", f"committer {who}",
                  *_data(f"MLX {c.sha[:10]} {c.title}\n"),
                  f"from {parent}" if i == 1 else f"from :{i - 1}", "deleteall",
                  f"M 100644 inline {VERSION_FILE}", *_data(version + "\n"),
                  f"M 100644 inline {SOURCE_FILE}", *_data(source_text(label, c, version)), ""]
    git(repo, "fast-import", "--quiet", "--force", input="\n".join(lines) + "\n")
    hashes = git(repo, "rev-list", "--first-parent", "--reverse", f"{parent}..{tmp}").split()
    git(repo, "update-ref", f"refs/heads/{SOURCE_PREFIX}{name}", hashes[-1])
    git(repo, "update-ref", "-d", tmp)
    if not configured_source(repo, environ={}):
        set_source(source, repo)
    log(f"ledger: {SOURCE_PREFIX}{name}: {len(hashes)} MLX commits {shas[0][:10]} ({tag}) .. "
        f"{shas[-1][:10]} ({end}), on {tag}")
    return list(zip(hashes, shas, versions))


def source_branches(repo=DEFAULT_REPO):
    """[(branch, tip, number of MLX commits)] of the ledger's source ranges."""
    return [(branch, tip, len(git(repo, "rev-list", tip, "--not", BRANCH, check=False).split()))
            for branch, tip in _branches(SOURCE_PREFIX, repo)]


def source_commits(branch, repo=DEFAULT_REPO):
    """[(ledger commit, MLX_SOURCE fields)] of a source branch, oldest first."""
    hashes = git(repo, "rev-list", "--reverse", branch, "--not", BRANCH).split()
    return [(h, read_source_text(git(repo, "show", f"{h}:{SOURCE_FILE}"))) for h in hashes]


def add_source_candidate(name, base, source, ref, repo=DEFAULT_REPO, record_as=None, log=print):
    """A candidate built from MLX source (a pull request's head ``ref``):
    branch ``candidate/NAME`` on release ``base``, holding MLX_VERSION,
    MLX_CANDIDATE (kind source) and MLX_SOURCE; dated on the MLX commit."""
    from mlx_asv.envs import mlxsource

    try:
        mrepo = mlxsource.local_repo(source, log=log)
        sha = mlxsource.resolve(mrepo, ref)
        c = mlxsource.commit_info(mrepo, [sha])[0]
        version = mlxsource.version_from_source(mlxsource.read_files(mrepo, sha, ("setup.py", "mlx/version.h")))
    except mlxsource.SourceError as e:
        raise LedgerError(str(e)) from None
    label = record_as or (source if mlxsource.is_url(source) else os.path.abspath(source))
    return add_candidate(name, base, repo=repo, log=log, _source=(label, c, version))


def desired_releases(table=DEFAULT_TABLE, online=True, timeout=10.0):
    releases = read_table(table)
    if online:
        registry = registry_releases(timeout=timeout)
        if registry is not None:
            releases = extend_with_registry(releases, registry)
    return releases


def ensure(repo=DEFAULT_REPO, table=DEFAULT_TABLE, online=None, log=print):
    """Build the ledger if missing, and bring it up to date.

    ``online=None`` asks the registry at most every REFRESH_INTERVAL (the asv
    plugin's mode); MLX_ASV_OFFLINE=1 never asks.
    """
    if os.environ.get("MLX_ASV_OFFLINE"):
        online = False
    stamp = os.path.join(repo, STAMP)
    timeout = 10.0
    if online is None:
        timeout = 3.0  # asked before an asv command: don't hold it up
        try:
            online = time.time() - os.path.getmtime(stamp) > REFRESH_INTERVAL
        except OSError:
            online = True
    releases = desired_releases(table, online=online, timeout=timeout)
    result = build(releases, repo=repo, log=log)
    if online:
        with open(stamp, "w") as f:
            f.write(dt.datetime.now(dt.timezone.utc).isoformat() + "\n")
    return result


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--repo", default=DEFAULT_REPO, help="ledger repository (default: ledger/)")
    ap.add_argument("--table", default=DEFAULT_TABLE, help="release table (default: tools/mlx_releases.tsv)")
    ap.add_argument("--offline", action="store_true", help="do not ask the package registry")
    ap.add_argument("--list", action="store_true", help="print version, date and commit of each release")
    ap.add_argument("--candidate", metavar="NAME",
                    help="add a candidate build as branch candidate/NAME (with --base and --wheel or --same-as)")
    ap.add_argument("--base", help="the release a candidate starts from (e.g. v0.32.4)")
    ap.add_argument("--wheel", action="append", default=[],
                    help="a candidate's wheel file (repeat for companion wheels, e.g. mlx_cpu)")
    ap.add_argument("--same-as", help="a candidate that installs this release (A/A comparisons)")
    ap.add_argument("--remove-candidate", metavar="NAME", help="delete branch candidate/NAME")
    ap.add_argument("--source", metavar="REPO",
                    help="an MLX git repository (clone, git directory or URL): remembered for building "
                         "releases without wheels; with --commits, or a candidate's --commit, read from it")
    ap.add_argument("--commits", metavar="A..B",
                    help="with --source: MLX's first-parent commits from release A to B as branch source/NAME")
    ap.add_argument("--name", help="the source branch's name (default: A-B)")
    ap.add_argument("--commit", metavar="REF", help="with --candidate and --source: the MLX commit to build")
    ap.add_argument("--record-as", metavar="URL",
                    help="the repository named in MLX_SOURCE (default --source; one URL everywhere = same hashes)")
    ap.add_argument("--remove-source", metavar="NAME", help="delete branch source/NAME")
    args = ap.parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    try:
        result = ensure(args.repo, args.table, online=False if args.offline else None if (
            args.candidate or args.remove_candidate or args.source or args.remove_source) else True, log=log)
        if (args.commits or args.commit) and not args.source:
            raise LedgerError("--commits and --commit read MLX's history: name it with --source REPO")
        if args.candidate:
            if not args.base:
                raise LedgerError("--candidate needs --base RELEASE (the release it starts from)")
            if args.source:
                if not args.commit:
                    raise LedgerError("a candidate from --source needs --commit REF (e.g. a pull request's head)")
                add_source_candidate(args.candidate, args.base, args.source, args.commit, repo=args.repo,
                                     record_as=args.record_as, log=log)
                return 0
            add_candidate(args.candidate, args.base, args.wheel, args.same_as, repo=args.repo, log=log)
            return 0
        if args.remove_source:
            ref = f"refs/heads/{SOURCE_PREFIX}{args.remove_source}"
            if not git(args.repo, "rev-parse", "-q", "--verify", ref, check=False).strip():
                raise LedgerError(f"no source branch {args.remove_source!r} (python tools/ledger.py --list)")
            git(args.repo, "update-ref", "-d", ref)
            return 0
        if args.source:
            if args.commits:
                if ".." not in args.commits:
                    raise LedgerError("--commits takes a range A..B (A a release of the ledger)")
                start, end = args.commits.split("..", 1)
                add_source_range(args.source, start, end, name=args.name, repo=args.repo,
                                 record_as=args.record_as, log=log)
            used = set_source(args.source, repo=args.repo)
            log(f"ledger: MLX commits without wheels are built from {used}")
            return 0
        if args.remove_candidate:
            remove_candidate(args.remove_candidate, repo=args.repo)
            return 0
    except LedgerError as e:
        print(f"ledger: error: {e}", file=sys.stderr)
        return 1
    if args.list:
        for rel, commit in result:
            print(f"{rel.tag}\t{rel.date.isoformat()}\t{commit}")
        for branch, commit, about in candidates(args.repo):
            kind = dict(line.split(" ", 1) for line in about.splitlines() if " " in line)
            print(f"{branch}\t{kind.get('kind', '?')} on {kind.get('base', '?')}\t{commit}")
        for branch, tip, n in source_branches(args.repo):
            print(f"{branch}\t{n} MLX commits from source\t{tip}")
    else:
        print(f"ledger: {len(result)} releases, {result[0][0].tag} .. {result[-1][0].tag} in {args.repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
