#!/usr/bin/env bash
# issue 27 (second session), one device call: the steps of $PLAN in order, each while time is left.
#   calib      12 processes of MLX 0.32.4 (a, b interleaved), studies/gpu27/calib.py: every mlx_gpu device case
#              and the 14 torch_cuda cases of cases.tsv, 60 profiled calls each, kernel by kernel
#   both       ops.py's whole GPU run with the device track, one asv run through mlx_asv/gpu/gpu_asv.sh (0.32.4)
#   prep:V     mlx_asv/gpu/prepare_run.py for $BALL on MLX V (inputs and kernels of ops.py's GPU run), so that a
#              later both step runs with the caches filled, as gpu_asv.sh's own prepare finds them on a used machine
#   opsonly    ops.py's GPU run without the device track (0.32.4)
#   dev:V      the device track alone, one asv run through mlx_asv/gpu/gpu_asv.sh on MLX V
#   devnc:V    the device track without mlx_gpu_compile, on MLX V
#   fix:V      the device cases of $BFIX again on MLX V, into the asv file(s) of $W/prev/V/ (each under asv's own
#              name, machine $M: asv loads it and keeps the cases not selected; the rest are measured again)
# Releases come as solid tar.xz chunks ($W/c*.tar.xz, studies/gpu27/chunk.sh) unpacked to /tmp/mlx-V.
set -uo pipefail
T0=$(date +%s); LIMIT=${LIMIT:-560}; TAG=${TAG:-g6}
W=${W:-.gpuwork}; S=/tmp/$TAG; mkdir -p $S
el() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(el)s] $*" | tee -a $S/go.log; }
save() { tar -C /tmp -cJf $OUT/$TAG.tar.xz $TAG 2>/dev/null; cp $S/go.log $OUT/ 2>/dev/null; }
[ -f $W/src.tar ] && tar -xf $W/src.tar   # the branch's code over the main checkout
source studies/gpu27/unpack.sh
BDEV="^(ops\.track_mlx_version$|device\.)"
BDEVNC="^(ops\.track_mlx_version$|device\..*'(mlx_gpu|torch_cuda)'\)$)"
BOPS="^ops\.(track_mlx_version$|[^(]*\(.*'(mlx_gpu|mlx_gpu_compile|torch_cuda)'\)$)"
BALL="$BOPS|^device\."
BFIX="^(ops\.track_mlx_version$|device\.(Sum|SumAll)\.|device\.Sort\.track_device_time\('dim=64x128x1024 axis=)"
left() { echo $(( LIMIT - $(el) )); }
asvrun() { # version regex tag
  [ -d /tmp/mlx-$1 ] || { log "no /tmp/mlx-$1: $3 not run"; return; }
  local t=$(el); rm -f results/$M/*-*.json; [ -n "${4:-}" ] && mkdir -p results/$M && cp $4/*-*.json results/$M/
  MLX_ASV_DEVICE_LOG=$S/$3.devlog MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda PYTHONPATH=/tmp/mlx-$1:/tmp/site \
    timeout $(left) bash mlx_asv/gpu/gpu_asv.sh $M "$2" $S/$3 > $S/$3.log 2>&1
  log "asv run $3: rc=$? wall $(( $(el) - t )) s"; grep -E "^device:|gpu_asv:|prepare" $S/$3.log | cut -c1-200 | tail -5
  cp results/$M/machine.json $S/ 2>/dev/null; save; return 0
}
for step in $PLAN; do
  case $step in
    calib)
      (( $(left) > 200 )) || { log "no time for calib"; continue; }
      [ -d /tmp/mlx-0.32.4 ] || { log "no /tmp/mlx-0.32.4: calib not run"; continue; }
      t=$(el); PYTHONPATH=/tmp/mlx-0.32.4:/tmp/site MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda \
        python3 -m mlx_asv.gpu.prepare_run --bench '^device\.' 2>&1 | tail -2 | tee -a $S/go.log; log "prepare 0.32.4: $(( $(el) - t )) s"
      mkdir -p $S/calib
      for k in 1 2 3 4 5 6; do
        if (( k % 2 )); then order="a b"; else order="b a"; fi
        for s in $order; do
          (( $(left) > ${CALIB_RESERVE:-240} )) || { log "calib stopped before $s r$k"; break 2; }
          t=$(el); PYTHONPATH=/tmp/mlx-0.32.4:/tmp/site MLX_ASV_BACKENDS=mlx_gpu,torch_cuda timeout 120 \
            python3 -m studies.gpu27.calib --bench "^device\..*'mlx_gpu'[)]$" --cases studies/gpu27/cases.tsv \
            --backends torch_cuda --calls 60 --out $S/calib/measure-$s-r$k.jsonl 2> $S/calib/err-$s-r$k.txt
          log "calib $s r$k: rc=$? $(( $(el) - t )) s, $(grep -c '"device"' $S/calib/measure-$s-r$k.jsonl) cases"
        done
      done; save ;;
    prep:*) v=${step#prep:}; t=$(el); PYTHONPATH=/tmp/mlx-$v:/tmp/site MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda \
        python3 -m mlx_asv.gpu.prepare_run --bench "$BALL" > $S/prep-$v.log 2>&1; log "prepare $v for both: rc=$? $(( $(el) - t )) s" ;;
    both) (( $(left) > 200 )) && asvrun 0.32.4 "$BALL" both-0.32.4 || log "no time for both" ;;
    opsonly) (( $(left) > 170 )) && asvrun 0.32.4 "$BOPS" ops-0.32.4 || log "no time for opsonly" ;;
    dev:*) v=${step#dev:}; (( $(left) > ${DEV_NEED:-75} )) && asvrun $v "$BDEV" dev-$v || log "no time for dev $v" ;;
    fix:*) v=${step#fix:}; (( $(left) > 60 )) && asvrun $v "$BFIX" fix-$v $W/prev/$v || log "no time for fix $v" ;;
    devnc:*) v=${step#devnc:}; (( $(left) > ${DEV_NEED:-75} )) && asvrun $v "$BDEVNC" devnc-$v || log "no time for devnc $v" ;;
  esac
done
log finish; save; ls -la $OUT
