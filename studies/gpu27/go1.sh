#!/usr/bin/env bash
# issue 27, device call 1: install, ncu, then study processes in interleaved rounds until the deadline
set -uo pipefail
T0=$(date +%s); LIMIT=${LIMIT:-545}; ROUNDS=${ROUNDS:-6}
W=${W:-.gpuwork}; R=${R:-$W/run}; S=/tmp/study; mkdir -p $S
el() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(el)s] $*" | tee -a $S/go.log; }
finish() {
  log "finish"
  PYTHONPATH=/tmp/mlx-0.32.4 python3 -m studies.device_study summary $S > $S/summary.md 2>&1; tail -n 45 $S/summary.md
  tar -C /tmp -cJf $OUT/study.tar.xz study; cp $S/go.log $OUT/; ls -la $OUT; exit 0
}
trap finish TERM
[ -f $W/src.tar ] && tar -xf $W/src.tar   # this branch's code over the main checkout
export PYTHONUNBUFFERED=1 MLX_ASV_INPUT_CACHE=/tmp/inputs MLX_ASV_BACKENDS=mlx_gpu,torch_cuda
for t in $W/mlx-*.tar.xz; do v=$(basename $t .tar.xz); [ -d /tmp/$v ] || tar -C /tmp -xJf $t; log "have /tmp/$v"; done
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu,mig.mode.current,persistence_mode --format=csv
  lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | cut -c1-200; uname -a; ncu --version | tail -1
  python3 -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'; } > $S/env.txt 2>&1
cat $S/env.txt
for v in 0.32.4 0.30.3 0.30.4; do PYTHONPATH=/tmp/mlx-$v python3 -c 'import mlx.core as mx; a=mx.array([3.,1.,2.]); print("mlx", mx.__version__, mx.default_device(), mx.sort(a))' 2>&1 | tail -1 | tee -a $S/go.log; done
t=$(el); PYTHONPATH=/tmp/mlx-0.32.4 python3 -m mlx_asv.gpu.prepare_run --bench '^device\.' 2>&1 | tail -3 | tee -a $S/go.log; log "prepare 0.32.4: $(( $(el) - t )) s"
M=smsp__inst_executed.sum,dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum
ncu_run() { # version cases tag
  local t=$(el)
  PYTHONPATH=/tmp/mlx-$1 timeout ${4:-150} ncu --clock-control none --profile-from-start off --metrics $M --csv --page raw \
    python3 -m studies.device_study ncu-child --cases $2 --backends mlx_gpu,torch_cuda --calls 3 --out $S/ncu-seq-$3.json > $S/ncu-$3.csv 2> $S/ncu-$3.err
  log "ncu $3: rc=$? in $(( $(el) - t )) s; $(grep -c '^"' $S/ncu-$3.csv) csv lines; $(tail -c 300 $S/ncu-$3.err | tr '\n' ' ')"
  python3 -m studies.device_study ncu-parse $S/ncu-seq-$3.json $S/ncu-$3.csv > $S/ncu-$3.json 2>> $S/ncu-$3.err || log "ncu-parse $3 failed"
}
ncu_run 0.32.4 $R/cases.tsv 0.32.4 170
ncu_run 0.30.3 $R/sort2.tsv 0.30.3 40
ncu_run 0.30.4 $R/sort2.tsv 0.30.4 40
# study processes: a, b = 0.32.4 (twins: 14 cases wall+device on both backends, then every mlx_gpu device case);
# old = 0.30.3, new = 0.30.4 (the three Sort cases, wall+device, both backends)
declare -A path=([a]=0.32.4 [b]=0.32.4 [old]=0.30.3 [new]=0.30.4) exp=([a]=70 [b]=70 [old]=20 [new]=20)
for k in $(seq 1 $ROUNDS); do
  if (( k % 2 )); then order="a b old new"; else order="new old b a"; fi
  for s in $order; do
    f=$S/measure-$s-r$k.jsonl
    [ -f $f ] && continue
    if (( $(el) + ${exp[$s]} > LIMIT )); then log "stop before r$k $s (expected ${exp[$s]} s)"; finish; fi
    t=$(el)
    if [[ $s == a || $s == b ]]; then args=(--cases $R/cases.tsv --all "'mlx_gpu'[)]\$"); else args=(--cases $R/sort.tsv); fi
    PYTHONPATH=/tmp/mlx-${path[$s]} timeout $(( LIMIT - $(el) )) python3 -m studies.device_study measure --backends mlx_gpu,torch_cuda "${args[@]}" --out $f.tmp > $S/measure-$s-r$k.log 2>&1
    rc=$?; d=$(( $(el) - t ))
    if [ $rc = 0 ]; then mv $f.tmp $f; (( d > ${exp[$s]} )) && exp[$s]=$d; log "r$k $s: $d s, $(grep -c '"error"' $f) errors"
    else log "r$k $s: rc=$rc after $d s: $(tail -c 300 $S/measure-$s-r$k.log | tr '\n' ' ')"; rm -f $f.tmp; fi
  done
done
finish
