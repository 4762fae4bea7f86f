#!/usr/bin/env bash
# issue 27, device call 4: asv runs of the device track (the flow): 0.32.4 and 0.32.3 device-only (for the reference
# history), then ops.py's whole GPU run with the device track on 0.32.4, timed
set -uo pipefail
T0=$(date +%s); LIMIT=${LIMIT:-560}
W=${W:-.gpuwork}; S=/tmp/flow; mkdir -p $S
el() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(el)s] $*" | tee -a $S/go.log; }
finish() { log finish; tar -C /tmp -cJf $OUT/flow.tar.xz flow; cp $S/go.log $OUT/; ls -la $OUT; exit 0; }
[ -f $W/src.tar ] && tar -xf $W/src.tar
export PYTHONUNBUFFERED=1 MLX_ASV_INPUT_CACHE=/tmp/inputs
for t in $W/mlx-*.tar.xz; do v=$(basename $t .tar.xz); [ -d /tmp/$v ] || tar -C /tmp -xJf $t; log "have /tmp/$v"; done
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $W/whl/*.whl 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,mig.mode.current --format=csv > $S/env.txt 2>&1; cat $S/env.txt
M=h100; grep -q H200 $S/env.txt && M=h200; log "machine name $M"
BDEV="^(ops\.track_mlx_version$|device\.)"
BALL="^ops\.(track_mlx_version$|[^(]*\(.*'(mlx_gpu|mlx_gpu_compile|torch_cuda)'\)$)|^device\."
one() { # version regex tag
  local t=$(el); rm -f results/$M/*-*.json
  MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda PYTHONPATH=/tmp/mlx-$1:/tmp/site timeout $(( LIMIT - $(el) )) \
    bash mlx_asv/gpu/gpu_asv.sh $M "$2" $S/$3 > $S/$3.log 2>&1
  log "asv run $3: rc=$? wall $(( $(el) - t )) s"; grep -E "prepare_run|gpu_asv:" $S/$3.log | cut -c1-200 | tail -4
}
one 0.32.4 "$BDEV" dev-0.32.4
one 0.32.3 "$BDEV" dev-0.32.3
(( $(el) < LIMIT - 200 )) && one 0.32.4 "$BALL" all-0.32.4 || log "no time for the whole run"
finish
