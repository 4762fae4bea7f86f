#!/usr/bin/env bash
# Run the suite with asv on a machine whose Python already holds MLX (e.g. with
# CUDA) and torch, and which cannot reach a package index: asv's "existing"
# environment benchmarks what is installed, recorded against the ledger
# commit of that MLX release.
#
#   mlx_asv/gpu/gpu_asv.sh MACHINE_NAME BENCH_REGEX [OUT_DIR]
#
# Environment: MLX_ASV_BACKENDS (default mlx_gpu,mlx_gpu_compile,torch_cuda),
# PYTHON (python3), LAUNCH (asv's --launch-method: forkserver, the default, or
# spawn), ROUNDS (asv's rounds for every benchmark, default 1; empty keeps each
# benchmark's own), PREPARE (1, the default: mlx_asv/gpu/prepare_run.py fills the input
# cache and MLX's kernel cache for the selected ops.py cases first, in
# parallel; 0 leaves that to the case processes).
# MLX_ASV_PRELOAD_MODELS: 0 (the default where the regex selects no models.py case) keeps asv's
# forkserver from importing transformers for models.py; 1 imports it.
#
# forkserver: asv's server imports torch and NumPy once and forks a process per
# case; it does not import MLX where MLX is a CUDA build (benchmarks/common.py,
# server_imports), so each child imports MLX and initializes CUDA after the
# fork. A process per case as with spawn, without ~4 s of `import torch` each.
# Samples are recorded (--record-samples) and every case runs in one process
# per run (ROUNDS=1), as mlx_asv/measure/protocol.py measures: a comparison gets its
# processes from more runs (rounds), not from one.
# Results go to results/MACHINE_NAME/ and, if OUT_DIR is given, are copied there
# with the log.
#
# Exit status: asv run's (0 all ran, 2 some cases failed, 1 asv failed), or 1
# when a step before or after it failed (MLX does not import, the release is
# not in the ledger, asv machine failed, the log or the results could not be
# written to OUT_DIR), so that a caller never takes a crash for success.
set -uo pipefail
machine=${1:?machine name}
bench=${2:?benchmark regex}
out=${3:-}
py=${PYTHON:-python3}
fail() { echo "gpu_asv: $*" >&2; exit 1; }
# each step's seconds on stderr ("gpu_asv: STEP took N.N s"): where a GPU run's wall goes besides asv's
# own benchmarks (issue 27: ops.py's GPU run must stay within 3 minutes)
t_step=$(date +%s%N)
took() { local now ms; now=$(date +%s%N); ms=$(( (now - t_step) / 1000000 )); t_step=$now
         printf 'gpu_asv: %s took %d.%d s\n' "$1" $((ms / 1000)) $((ms % 1000 / 100)) >&2; }
# the repository root: python finds the package there (a GPU host's python lacks it installed)
cd "$(dirname "$0")/../.."
export MLX_ASV_OFFLINE=1 MLX_ASV_BACKENDS=${MLX_ASV_BACKENDS:-mlx_gpu,mlx_gpu_compile,torch_cuda}
# benchmarks/device.py measures every selected device case in one process (its setup_cache): this says which
export MLX_ASV_DEVICE_BENCH=${MLX_ASV_DEVICE_BENCH:-$bench}
# asv's forkserver imports transformers' classes for models.py (seconds on a GPU host) only where the regex
# can select a models.py case (mlx_asv/measure/protocol.py's rule, as the rounds apply it)
if [ -z "${MLX_ASV_PRELOAD_MODELS:-}" ]; then
    preload=$($py -c 'import sys; from mlx_asv.measure.protocol import selects_models; print(int(selects_models(sys.argv[1])))' "$bench") || preload=1
    export MLX_ASV_PRELOAD_MODELS=$preload
fi
# asv drops PYTHONPATH from the benchmark processes unless ASV_PYTHONPATH says it.
[ -n "${PYTHONPATH:-}" ] && export ASV_PYTHONPATH=${ASV_PYTHONPATH:-$PYTHONPATH}
version=$($py -c 'import mlx.core as mx; print(mx.__version__)') || fail "MLX does not import"
took "MLX's import check"
$py tools/ledger.py --offline >/dev/null || fail "tools/ledger.py --offline failed"
commit=$($py tools/ledger.py --offline --list | awk -v t="v$version" '$1==t {print $3}') || fail "tools/ledger.py --list failed"
[ -n "$commit" ] || fail "MLX $version is not in the ledger"
took "the ledger"
$py -m asv machine --yes --machine "$machine" >/dev/null || fail "asv machine --machine $machine failed"
took "asv machine"
if [ "${PREPARE:-1}" != 0 ]; then
    $py -m mlx_asv.gpu.prepare_run --bench "$bench" ||
        echo "gpu_asv: mlx_asv.gpu.prepare_run failed; the case processes make their inputs and kernels" >&2
    took "mlx_asv.gpu.prepare_run"
fi
log=${out:+$out/asv-$machine.log}
if [ -n "$out" ]; then mkdir -p "$out" || fail "cannot make $out"; fi
rounds=${ROUNDS-1}
$py -m asv run -E "existing:$(command -v $py)" --set-commit-hash "$commit" --machine "$machine" \
    --launch-method "${LAUNCH:-forkserver}" --record-samples ${rounds:+-a rounds=$rounds} \
    --show-stderr -b "$bench" 2>&1 | tee ${log:-/dev/null}
status=("${PIPESTATUS[@]}")
took "asv run"
rc=${status[0]}
if [ "${status[1]}" != 0 ]; then
    echo "gpu_asv: could not write the log $log" >&2
    [ "$rc" != 0 ] || rc=1
fi
if [ -n "$out" ] && ! cp results/"$machine"/*.json "$out"/ 2>/dev/null; then
    echo "gpu_asv: no results in results/$machine/ to copy to $out" >&2
    [ "$rc" != 0 ] || rc=1
fi
echo "gpu_asv: asv run exited ${status[0]} (2 = some cases failed; their rows show as failed); exit $rc"
exit "$rc"
