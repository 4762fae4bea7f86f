#!/usr/bin/env bash
# Run the suite with asv on a machine whose Python already holds MLX (e.g. with
# CUDA) and torch, and which cannot reach a package index: asv's "existing"
# environment benchmarks what is installed, recorded against the ledger
# commit of that MLX release.
#
#   gpu/gpu_asv.sh MACHINE_NAME BENCH_REGEX [OUT_DIR]
#
# Environment: MLX_ASV_BACKENDS (default mlx_gpu,torch_cuda), PYTHON (python3),
# LAUNCH (asv's --launch-method: spawn, the default, or forkserver).
# Results go to results/MACHINE_NAME/ and, if OUT_DIR is given, are copied there
# with the log.
set -uo pipefail
machine=${1:?machine name}
bench=${2:?benchmark regex}
out=${3:-}
py=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export MLX_ASV_OFFLINE=1 MLX_ASV_BACKENDS=${MLX_ASV_BACKENDS:-mlx_gpu,torch_cuda}
# asv drops PYTHONPATH from the benchmark processes unless ASV_PYTHONPATH says it.
[ -n "${PYTHONPATH:-}" ] && export ASV_PYTHONPATH=${ASV_PYTHONPATH:-$PYTHONPATH}
version=$($py -c 'import mlx.core as mx; print(mx.__version__)') || { echo "gpu_asv: MLX does not import" >&2; exit 1; }
$py tools/ledger.py --offline >/dev/null || exit 1
commit=$($py tools/ledger.py --offline --list | awk -v t="v$version" '$1==t {print $3}')
[ -n "$commit" ] || { echo "gpu_asv: MLX $version is not in the ledger" >&2; exit 1; }
$py -m asv machine --yes --machine "$machine" >/dev/null
log=${out:+$out/asv-$machine.log}
[ -n "$out" ] && mkdir -p "$out"
$py -m asv run -E "existing:$(command -v $py)" --set-commit-hash "$commit" --machine "$machine" \
    --launch-method "${LAUNCH:-spawn}" --show-stderr -b "$bench" 2>&1 | tee ${log:-/dev/null}
rc=${PIPESTATUS[0]}
if [ -n "$out" ]; then
    mkdir -p "$out"
    cp results/"$machine"/*.json "$out"/ 2>/dev/null
fi
echo "gpu_asv: asv run exited $rc (2 = some cases failed; their rows show as failed)"
exit 0
