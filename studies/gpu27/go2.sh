#!/usr/bin/env bash
# issue 27, device call 2: the Sort step 0.30.3 -> 0.30.4 (study processes of the case alone), then one asv run of
# ops.py's GPU backends with the device track (0.30.4), timed
set -uo pipefail
T0=$(date +%s); LIMIT=${LIMIT:-560}; ROUNDS=${ROUNDS:-6}
W=${W:-.gpuwork}; R=${R:-$W/run}; S=/tmp/study2; mkdir -p $S
el() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(el)s] $*" | tee -a $S/go.log; }
finish() { log finish; tar -C /tmp -cJf $OUT/study2.tar.xz study2; cp $S/go.log $OUT/; ls -la $OUT; exit 0; }
[ -f $W/src.tar ] && tar -xf $W/src.tar
export PYTHONUNBUFFERED=1 MLX_ASV_INPUT_CACHE=/tmp/inputs
for t in $W/mlx-*.tar.xz; do v=$(basename $t .tar.xz); [ -d /tmp/$v ] || tar -C /tmp -xJf $t; log "have /tmp/$v"; done
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $W/whl/*.whl 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,mig.mode.current --format=csv > $S/env.txt 2>&1; cat $S/env.txt
declare -A path=([old]=0.30.3 [new]=0.30.4)
for k in $(seq 1 $ROUNDS); do
  if (( k % 2 )); then order="old new"; else order="new old"; fi
  for s in $order; do
    f=$S/measure-$s-r$k.jsonl; t=$(el)
    MLX_ASV_BACKENDS=mlx_gpu,torch_cuda PYTHONPATH=/tmp/mlx-${path[$s]} timeout 60 python3 -m studies.device_study measure --backends mlx_gpu,torch_cuda --cases $R/sort2.tsv --out $f.tmp > $S/measure-$s-r$k.log 2>&1
    rc=$?; if [ $rc = 0 ]; then mv $f.tmp $f; log "r$k $s: $(( $(el) - t )) s, $(grep -c '"error"' $f) errors"; else log "r$k $s rc=$rc: $(tail -c 300 $S/measure-$s-r$k.log)"; fi
  done
done
# the GPU run of ops.py (time_, three GPU backends) with the device track, as the history's runs are made
B="^ops\.(track_mlx_version$|[^(]*\(.*'(mlx_gpu|mlx_gpu_compile|torch_cuda)'\)$)|^device\."
t=$(el)
MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda PYTHONPATH=/tmp/mlx-0.30.4:/tmp/site timeout $(( LIMIT - $(el) )) bash mlx_asv/gpu/gpu_asv.sh h100 "$B" $S/asv-0.30.4 > $S/asv-0.30.4.log 2>&1
log "asv run 0.30.4 (ops.py time_ + device, 3 GPU backends): rc=$? wall $(( $(el) - t )) s"
grep -E "prepare_run|Setting up|device\.Sort|gpu_asv:" $S/asv-0.30.4.log | cut -c1-250 | tail -20
finish
