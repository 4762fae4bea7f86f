"""asv plugin of this project (asv.conf.json: "plugins": [".tools.asv_plugin"]).

asv imports it and calls setup() before every command, run from the project
directory. It makes sure that:

1. the release ledger exists and follows new MLX releases (tools/ledger.py),
   so no manual step comes before any asv command;
2. no corrupt results file stops a run: asv aborts ``asv run`` for a release
   whose results file it cannot parse. Such a file is moved, whole, to
   ``results/corrupt/`` (nothing is deleted) with a one-line notice, and the
   release is measured again.
"""

import json
import os
import shutil
import sys

from tools import ledger

CONF = "asv.conf.json"
# results files already read: path -> [size, mtime]. No ".json" suffix: asv
# would take it for a results file and warn that it has no machine.json.
SEEN = ".checked-files"


def results_dir(conf_path=CONF):
    try:
        from asv.util import load_json

        conf = load_json(conf_path, js_comments=True)
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


def setup():
    def warn(msg):
        print(msg, file=sys.stderr)

    try:
        ledger.ensure(log=warn)
    except ledger.LedgerError as e:
        warn(f"ledger: error: {e}")
    quarantine_corrupt_results(results_dir(), log=warn)
