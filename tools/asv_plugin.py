"""asv plugin of this project (asv.conf.json: "plugins": [".tools.asv_plugin"]).

asv imports it and calls setup() before every command, run from the project
directory. It makes sure that:

1. the release ledger exists and follows new MLX releases (tools/ledger.py),
   so no manual step comes before any asv command;
2. a release the ledger does not know ends the command in one line, not in
   a traceback from ``git rev-list``: the command line's revision arguments
   (``asv run v9.9.9..v9.9.10``, ``asv continuous A B``, ``asv compare A B``,
   ``asv find A..B``, ``asv show C``, ...; read with asv's own argument
   parser) are checked, and a release-like name (``v0.32.4``, ``0.32.4``, in
   a range ``A..B`` or ``A^!``) that is no tag of the ledger stops asv with
   status 2, naming the unknown release, the newest one the ledger knows and
   the fix. Other names (HEAD, hashes, branches, ALL, HASHFILE:...) are left
   to asv;
3. a setting that changes the numbers is not silently replaced: asv.conf.json's
   matrix sets ``MLX_ASV_FLAVOR`` (``env``) and ``MLX_ENABLE_TF32``
   (``env_nobuild``), and asv applies a matrix value *over* the caller's
   environment (asv/environment.py: ``environ.update(self.build_env_vars)``
   for the install; asv/runner.py: ``env_vars.update(self.env.env_vars)``
   for the benchmarks). So a command that installs or runs benchmarks
   (run, continuous, find, profile, setup, check) in a matrix environment
   while the environment sets one of these to another value stops with one
   line and status 2, naming the variant config that measures with it
   (tools/config_variant.py). asv's ``existing`` environment (``-E
   existing:...``) ignores the matrix, so the check does not apply there;
4. no corrupt results file stops a run: asv aborts ``asv run`` for a release
   whose results file it cannot parse. Such a file is moved, whole, to
   ``results/corrupt/`` (nothing is deleted) with a one-line notice, and the
   release is measured again.
"""

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

from mlx_asv.envs import asv_config, ledger

CONF = "asv.conf.json"
# The matrix's settings that change the numbers (asv.conf.json), and the torch
# matrix's torch version (asv.torch.conf.json, tools/torch_matrix.py).
SETTINGS = ("MLX_ASV_FLAVOR", "MLX_ENABLE_TF32", "MLX_ASV_TORCH")
# asv's commands that install the project or run benchmarks in its environments.
MATRIX_COMMANDS = ("Run", "Continuous", "Find", "Profile", "Setup", "Check")
# results files already read: path -> [size, mtime]. No ".json" suffix: asv
# would take it for a results file and warn that it has no machine.json.
SEEN = ".checked-files"


def results_dir(conf_path=CONF):
    try:
        conf = asv_config.load_conf(conf_path)
    except Exception:  # noqa: BLE001 - no readable config: nothing to check
        return None
    return os.path.join(os.path.dirname(os.path.abspath(conf_path)), conf.get("results_dir", "results"))


def quarantine_corrupt_results(folder, log=print):
    """Move results files that are not valid JSON to ``folder/corrupt/``; return them."""
    if not folder or not os.path.isdir(folder):
        return []
    seen_path = os.path.join(folder, SEEN)
    try:
        with open(seen_path) as f:
            seen = json.load(f)
    except (OSError, ValueError):
        seen = {}
    moved, now_seen = [], {}
    for machine in sorted(os.listdir(folder)):
        sub = os.path.join(folder, machine)
        if machine == "corrupt" or not os.path.isdir(sub):
            continue
        for name in sorted(os.listdir(sub)):
            if not name.endswith(".json"):
                continue
            path = os.path.join(sub, name)
            st = os.stat(path)
            stamp = [st.st_size, st.st_mtime]
            rel = os.path.join(machine, name)
            if seen.get(rel) == stamp:
                now_seen[rel] = stamp
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    json.load(f)
            except (ValueError, UnicodeDecodeError) as e:
                target_dir = os.path.join(folder, "corrupt", machine)
                os.makedirs(target_dir, exist_ok=True)
                shutil.move(path, os.path.join(target_dir, name))
                moved.append(rel)
                log(f"results: {rel} is not valid JSON ({e.__class__.__name__}); moved to "
                    f"{os.path.join('corrupt', rel)}; asv run measures that release again")
                continue
            now_seen[rel] = stamp
    with open(seen_path, "w") as f:
        json.dump(now_seen, f)
    return moved


# The dests of asv's positional revision arguments, over its subcommands:
# run/find/publish (range), continuous (base, branch), compare (revision1,
# revision2), show (commit), profile (revision).
REVISION_ARGS = ("range", "base", "branch", "revision1", "revision2", "commit", "revision")
# What a user writes for a release: v0.32.4 (the ledger's tags), or 0.32.4.
RELEASE_LIKE = re.compile(r"v\d+(\.\d+)*|\d+\.\d+(\.\d+)+")
# git's suffixes on a revision: A^!, A^@, A^, A^2, A~3, A^{commit}.
REV_SUFFIX = re.compile(r"(\^[!@]|\^\{[^}]*\}|[~^]\d*)+$")


def parse_asv_args(argv):
    """The asv command line ``argv`` (without the program name) read with asv's
    own parser, or None if it is not an asv command line."""
    try:
        from asv import commands

        parser, _ = commands.make_argparser()
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(argv)
    except (Exception, SystemExit):  # noqa: BLE001 - not ours to judge: asv parsed it already
        return None


def revision_args(argv):
    """The revision and range arguments of the asv command line ``argv``
    (without the program name), read with asv's own parser; [] if it is not
    an asv command line."""
    args = parse_asv_args(argv)
    if args is None:
        return []
    return [v for v in (getattr(args, d, None) for d in REVISION_ARGS) if isinstance(v, str)]


def config_in_use(args, cwd=None):
    """The config file asv loaded: ``--config`` (asv has made its folder the
    cwd, so a relative path is read from there by its name), else asv.conf.json."""
    cwd = cwd or os.getcwd()
    config = getattr(args, "config", None)
    if not config:
        return os.path.join(cwd, CONF)
    return config if os.path.isabs(config) else os.path.join(cwd, os.path.basename(config))


def overridden_settings(matrix, environ):
    """[(VAR, the environment's value, the matrix's values)] for each setting
    the caller's environment gives a value that the matrix would replace."""
    found = []
    for kind in ("env", "env_nobuild"):
        for var, values in (matrix.get(kind) or {}).items():
            values = [str(v) for v in (values if isinstance(values, list) else [values])]
            if var in SETTINGS and var in environ and set(values) != {environ[var]}:
                found.append((var, environ[var], values))
    return found


def setting_override_message(argv, environ=os.environ, cwd=None):
    """None, or the one line saying that the asv command line ``argv`` would run
    with a matrix value in place of the environment's setting, and what to do."""
    args = parse_asv_args(argv)
    if args is None or getattr(getattr(args, "func", None), "__self__", type).__name__ not in MATRIX_COMMANDS:
        return None
    specs = getattr(args, "env_spec", None) or []
    if specs and all(s.startswith("existing") for s in specs):
        return None  # asv's existing environment ignores the matrix
    path = config_in_use(args, cwd)
    try:
        conf = asv_config.load_conf(path)
    except Exception:  # noqa: BLE001 - asv itself reports an unreadable config
        return None
    found = overridden_settings(conf.get("matrix") or {}, environ)
    if not found:
        return None
    from mlx_asv.envs import config_variant

    name = os.path.basename(path)
    asked = {var: value for var, value, _ in found}
    if "MLX_ASV_TORCH" in asked:  # the torch matrix's list, not a config variant
        values = next(v for var, _, v in found if var == "MLX_ASV_TORCH")
        return (f"mlx-asv: your environment sets MLX_ASV_TORCH={asked['MLX_ASV_TORCH']}, but {name}'s matrix "
                f"sets MLX_ASV_TORCH={'|'.join(values)} and asv would use the matrix's versions without a word; "
                f"the torch versions are the matrix's list: python tools/torch_matrix.py --write --versions "
                f"A,B writes another; else unset MLX_ASV_TORCH.")
    said = ", ".join(f"{var}={value}" for var, value in asked.items())
    matrix = ", ".join(f"{var}={'|'.join(values)}" for var, _, values in found)
    command = args.func.__self__.__name__.lower()
    pairs = " ".join(shlex.quote(f"{var}={value}") for var, value in asked.items())
    return (
        f"mlx-asv: your environment sets {said}, but {name}'s matrix sets {matrix} and asv would "
        f"use the matrix's value without a word; to measure with yours, write a config variant and "
        f"run asv with it: python tools/config_variant.py {pairs} && asv --config "
        f"{shlex.quote(config_variant.variant_name(asked))} {command} ... (its results get an "
        f"environment name of their own); else unset {', '.join(asked)}."
    )


def check_settings(argv, environ=os.environ, cwd=None, log=None):
    """Stop (SystemExit 2) with one line if the matrix would override a setting of ``environ``."""
    message = setting_override_message(argv, environ, cwd)
    if message is not None:
        (log or (lambda m: print(m, file=sys.stderr)))(message)
        raise SystemExit(2)


def release_names(spec):
    """The release-like names in one revision argument:
    'v0.20.0..v0.24.1' -> ['v0.20.0', 'v0.24.1'], 'v0.32.4^!' -> ['v0.32.4'],
    'HEAD~3..HEAD' -> []."""
    names = []
    for part in re.split(r"\.{2,3}", spec):
        part = REV_SUFFIX.sub("", part.strip().lstrip("^"))
        if RELEASE_LIKE.fullmatch(part):
            names.append(part)
    return names


def _git_ok(repo, *args):
    proc = subprocess.run(["git", "--git-dir", repo, *args], capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout


def is_known(repo, name):
    return _git_ok(repo, "rev-parse", "--verify", "-q", f"{name}^{{commit}}")[0]


def newest_release(repo):
    ok, out = _git_ok(repo, "for-each-ref", "--format=%(refname:short)", "refs/tags")
    tags = [t for t in out.split() if t.startswith("v") and ledger.is_release(t[1:])] if ok else []
    return max(tags, key=ledger.version_key) if tags else None


def unknown_release_message(argv, repo=ledger.DEFAULT_REPO, environ=os.environ):
    """None, or the one line saying which release named on the asv command
    line ``argv`` the ledger ``repo`` does not know, and what to do."""
    names = list(dict.fromkeys(n for spec in revision_args(argv) for n in release_names(spec)))
    if not names or not os.path.isdir(repo):
        return None
    unknown = [n for n in names if not is_known(repo, n)]
    if not unknown:
        return None
    hints = [f"v{n}" for n in unknown if not n.startswith("v") and is_known(repo, f"v{n}")]
    newest = newest_release(repo)
    refresh = "python tools/ledger.py"
    if environ.get("MLX_ASV_OFFLINE"):
        refresh += " (with MLX_ASV_OFFLINE unset)"
    return (
        f"mlx-asv: no MLX release {', '.join(unknown)} in the ledger"
        + (f" (its tags are named like {', '.join(hints)})" if hints else "")
        + f"; the newest release it knows is {newest or 'none'}."
        f" If the release is new, run {refresh} to add it from the package registry (needs the network);"
        f" python tools/ledger.py --list shows the releases."
    )


def check_revisions(argv, repo=ledger.DEFAULT_REPO, environ=os.environ, log=None):
    """Stop (SystemExit 2) with one line if ``argv`` names a release the ledger lacks."""
    message = unknown_release_message(argv, repo, environ)
    if message is not None:
        (log or (lambda m: print(m, file=sys.stderr)))(message)
        raise SystemExit(2)


def setup():
    def warn(msg):
        print(msg, file=sys.stderr)

    check_settings(sys.argv[1:], log=warn)
    try:
        ledger.ensure(log=warn)
    except ledger.LedgerError as e:
        warn(f"ledger: error: {e}")
    else:
        check_revisions(sys.argv[1:], log=warn)
    quarantine_corrupt_results(results_dir(), log=warn)
