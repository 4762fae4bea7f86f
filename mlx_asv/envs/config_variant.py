#!/usr/bin/env python3
"""Write a variant of asv.conf.json whose matrix gives a setting another value.

asv.conf.json's matrix fixes the settings that change the numbers
(``MLX_ASV_FLAVOR``, ``MLX_ENABLE_TF32``), and a matrix value overrides the same
variable in the caller's environment. To measure with another value, run asv
with a variant config: same project, ledger, benchmarks and results folder,
only that matrix value changed, so its results carry an environment name of
their own (the results files, asv's site and tools/report.py keep them apart).

Usage:
    python tools/config_variant.py MLX_ENABLE_TF32=0          # writes asv.MLX_ENABLE_TF32-0.conf.json
    asv --config asv.MLX_ENABLE_TF32-0.conf.json run v0.32.4^!
    python tools/config_variant.py MLX_ASV_FLAVOR=cuda        # CUDA 12 wheels: an environment of its own

The variant is written beside asv.conf.json (asv runs from its config's
folder, so the project's relative paths hold); ``asv.*.conf.json`` is
git-ignored. A variable that is not in the matrix's ``env`` or
``env_nobuild`` is refused in one line (exit 2).
"""

from __future__ import annotations

import json
import os
import re
import sys

from mlx_asv.envs import asv_config

CONF = asv_config.CONF


class VariantError(Exception):
    pass


def variant_name(settings):
    """asv.MLX_ENABLE_TF32-0.conf.json for {"MLX_ENABLE_TF32": "0"}."""
    parts = [f"{var}-{re.sub(r'[^A-Za-z0-9_.]+', '_', value)}" for var, value in settings.items()]
    return f"asv.{'-'.join(parts)}.conf.json"


def variant(conf, settings):
    """``conf`` with each matrix variable in ``settings`` ({VAR: value}) set to that one value."""
    conf = json.loads(json.dumps(conf))
    matrix = conf.get("matrix", {})
    for var, value in settings.items():
        kinds = [k for k in ("env", "env_nobuild") if var in matrix.get(k, {})]
        if not kinds:
            have = sorted(v for k in ("env", "env_nobuild") for v in matrix.get(k, {}))
            raise VariantError(f"{var} is not a variable of asv.conf.json's matrix "
                               f"(its variables: {', '.join(have) or 'none'})")
        matrix[kinds[0]][var] = [value]
    return conf


def write_variant(settings, conf_path=CONF):
    conf = variant(asv_config.load_conf(conf_path), settings)
    path = os.path.join(os.path.dirname(os.path.abspath(conf_path)), variant_name(settings))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(conf, f, indent=4)
        f.write("\n")
    return path


def parse(argv):
    settings = {}
    for arg in argv:
        var, sep, value = arg.partition("=")
        if not sep or not var:
            raise VariantError(f"expected VAR=VALUE, got {arg!r}")
        settings[var] = value
    if not settings:
        raise VariantError("usage: python tools/config_variant.py VAR=VALUE [VAR=VALUE ...]")
    return settings


def main(argv=None):
    try:
        path = write_variant(parse(sys.argv[1:] if argv is None else argv))
    except VariantError as e:
        print(f"config_variant.py: {e}", file=sys.stderr)
        return 2
    print(f"wrote {os.path.relpath(path)}; run asv with it: asv --config {os.path.basename(path)} run ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
