#!/usr/bin/env bash
# issue 27 (fourth session), one device call: the steps of $PLAN in order, each while time is left.
#   src:NAME     extract $W/NAME.tar over the checkout (the code measured from then on)
#   prep:V       mlx_asv/gpu/prepare_run.py for $BALL on MLX V (the caches a later both step finds filled)
#   both:TAG     ops.py's whole GPU run with the device track on 0.32.4 (mlx_asv/gpu/gpu_asv.sh), then
#                studies/gpu27/walltime.py's durations of it; bothp:TAG the same with $MLX_ASV_PROFILE set
#                (benchmarks/common.py's events, then studies/process_profile.py's phases by backend)
#   startcost    studies/gpu27/startcost.py: what a forked GPU case process spends before its first call
#   cprof        the device track's measuring child (benchmarks/device.py --measure 40) over all device cases of
#                $BALL on 0.32.4, under cProfile: where its seconds go, case by case (the fifth session)
#   pyc          whether Python can keep compiled modules (.pyc) of torch there, and import torch (and its
#                profiler) twice plainly and twice with $PYTHONPYCACHEPREFIX=/tmp/pyc; where the plain second
#                import is 1.5 times the prefixed one or slower, later steps run with that prefix; and what the
#                forkserver's import of benchmarks/models.py costs with and without $MLX_ASV_PRELOAD_MODELS
#   dev:V        the device track alone, one asv run through mlx_asv/gpu/gpu_asv.sh on MLX V
#   rounds:A,B   mlx_asv/gpu/gpu_rounds.py over the device track, sides a=A and b=B (MLX versions), $ROUNDS
#                rounds, resumable in /tmp/$TAG/rounds, then studies/gpu_verdicts.py --measure device
# Since the fifth session every line of an asv run's log carries the seconds since the run began
# (studies/gpu27/stamp.py), so the log shows when discovery, the device track's measuring process and the
# first and last benchmark started.
# Run it from a copy (cp studies/gpu27/go7.sh /tmp/ && bash /tmp/go7.sh): a src step rewrites the checkout.
# Releases come as solid tar.xz chunks ($W/c*.tar.xz, studies/gpu27/chunk.sh) unpacked to /tmp/mlx-V.
set -uo pipefail
T0=$(date +%s); LIMIT=${LIMIT:-560}; TAG=${TAG:-g8}
W=${W:-.gpuwork}; S=/tmp/$TAG; mkdir -p $S
el() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(el)s] $*" | tee -a $S/go.log; }
save() { tar -C /tmp -cJf $OUT/$TAG.tar.xz --exclude='*.prof.jsonl' $TAG 2>/dev/null; cp $S/go.log $OUT/ 2>/dev/null; }
source studies/gpu27/unpack.sh
BDEV="^(ops\.track_mlx_version$|device\.)"
BOPS="^ops\.(track_mlx_version$|[^(]*\(.*'(mlx_gpu|mlx_gpu_compile|torch_cuda)'\)$)"
BALL="$BOPS|^device\."
left() { echo $(( LIMIT - $(el) )); }
asvrun() { # version regex tag [profile]
  [ -d /tmp/mlx-$1 ] || { log "no /tmp/mlx-$1: $3 not run"; return; }
  local t=$(el) prof=; rm -f results/$M/*-*.json
  [ -n "${4:-}" ] && { prof=$S/$3.prof.jsonl; rm -f $prof; }
  MLX_ASV_PROFILE=$prof MLX_ASV_DEVICE_LOG=$S/$3.devlog MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda \
    PYTHONPATH=/tmp/mlx-$1:/tmp/site timeout $(left) bash mlx_asv/gpu/gpu_asv.sh $M "$2" $S/$3 2>&1 |
    python3 -u studies/gpu27/stamp.py > $S/$3.log
  log "asv run $3: rc=${PIPESTATUS[0]} wall $(( $(el) - t )) s"; grep -E "^device:|gpu_asv:|prepare" $S/$3.log | cut -c1-200 | tail -4
  PYTHONPATH=/tmp/mlx-$1:/tmp/site python3 -m studies.gpu27.walltime durations $S/$3/*-*.json 2>&1 | tee -a $S/go.log
  if [ -n "$prof" ]; then
    python3 -m studies.process_profile $prof --by backend > $S/$3.phases.txt 2>&1; cat $S/$3.phases.txt | head -40
  fi
  cp results/$M/machine.json $S/ 2>/dev/null; save; return 0
}
for step in $PLAN; do
  case $step in
    src:*) tar -xf $W/${step#src:}.tar && log "code: $W/${step#src:}.tar" || log "no $W/${step#src:}.tar" ;;
    prep:*) v=${step#prep:}; t=$(el); PYTHONPATH=/tmp/mlx-$v:/tmp/site MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda \
        python3 -m mlx_asv.gpu.prepare_run --bench "$BALL" > $S/prep-$v.log 2>&1; log "prepare $v for both: rc=$? $(( $(el) - t )) s"; tail -3 $S/prep-$v.log ;;
    both:*) (( $(left) > ${BOTH_NEED:-200} )) && asvrun 0.32.4 "$BALL" both-${step#both:} || log "no time for $step" ;;
    bothp:*) (( $(left) > ${BOTH_NEED:-200} )) && asvrun 0.32.4 "$BALL" both-${step#bothp:} prof || log "no time for $step" ;;
    startcost) t=$(el); PYTHONPATH=/tmp/mlx-0.32.4:/tmp/site timeout 120 python3 -m studies.gpu27.startcost --reps 4 \
        --out $S/startcost.jsonl > $S/startcost.log 2>&1; log "startcost: rc=$? $(( $(el) - t )) s"; grep startcost: $S/startcost.log | tee -a $S/go.log ;;
    cprof) t=$(el); export PYTHONPATH=/tmp/mlx-0.32.4:/tmp/site MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda
      python3 -c "import json; from benchmarks import device; print(json.dumps([k for k, *_ in device.selected('^device\\.')]))" > $S/keys.json
      timeout $(left) python3 -m cProfile -o $S/child.prof -m benchmarks.device --measure 40 < $S/keys.json > $S/child.jsonl 2> $S/child.err
      log "cprof: rc=$? $(( $(el) - t )) s, $(wc -l < $S/child.jsonl) cases"; tail -2 $S/child.err
      python3 -c "import pstats; pstats.Stats('$S/child.prof').sort_stats('cumulative').print_stats(80)" > $S/child.pstats.txt 2>&1
      python3 -c "import pstats; pstats.Stats('$S/child.prof').sort_stats('tottime').print_stats(40)" >> $S/child.pstats.txt 2>&1
      head -70 $S/child.pstats.txt | tail -50; unset PYTHONPATH MLX_ASV_BACKENDS; save ;;
    pyc) TIMEFORMAT=%R; tp=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
      { python3 -c 'import sys, os; print("dont_write_bytecode", sys.flags.dont_write_bytecode, "pycache_prefix", sys.pycache_prefix)'
        env | grep -E '^PYTHON'; echo "torch at $tp; writable: $([ -w $tp ] && echo yes || echo no)"
        echo "torch/__pycache__ files: $(ls $tp/__pycache__ 2>/dev/null | wc -l); torch/_dynamo/__pycache__ files: $(ls $tp/_dynamo/__pycache__ 2>/dev/null | wc -l)"; } > $S/pyc.txt 2>&1
      for k in 1 2; do echo "plain $k $( { time python3 -c 'import torch, torch.profiler' ; } 2>&1 )"; done >> $S/pyc.txt
      for k in 1 2; do echo "prefix $k $( { time PYTHONPYCACHEPREFIX=/tmp/pyc python3 -c 'import torch, torch.profiler' ; } 2>&1 )"; done >> $S/pyc.txt
      python3 -c 'import importlib.util as u; print("transformers installed:", u.find_spec("transformers") is not None)' >> $S/pyc.txt 2>&1
      for p in 1 0 1 0; do echo "server import of benchmarks.models, MLX_ASV_PRELOAD_MODELS=$p: $( { time MLX_ASV_PRELOAD_MODELS=$p PYTHONPATH=/tmp/mlx-0.32.4:/tmp/site python3 -c "import sys; sys.argv = ['asv_runner', 'run_server']; import benchmarks.models" > /dev/null 2>&1 ; } 2>&1 )"; done >> $S/pyc.txt
      cat $S/pyc.txt | tee -a $S/go.log
      if python3 -c "import sys; r = {l.split()[0] + l.split()[1]: float(l.split()[-1]) for l in open('$S/pyc.txt') if l.startswith(('plain', 'prefix'))}; sys.exit(0 if r['plain2'] > 1.5 * r['prefix2'] else 1)"; then
        export PYTHONPYCACHEPREFIX=/tmp/pyc; log "pyc: later steps run with PYTHONPYCACHEPREFIX=/tmp/pyc"; else log "pyc: no prefix"; fi ;;
    dev:*) v=${step#dev:}; (( $(left) > ${DEV_NEED:-75} )) && asvrun $v "$BDEV" dev-$v || log "no time for dev $v" ;;
    rounds:*) sides=${step#rounds:}; a=${sides%,*}; b=${sides#*,}; t=$(el)
      (( $(left) > ${DEV_NEED:-75} )) || { log "no time for rounds"; continue; }
      MLX_ASV_DEVICE_LOG=$S/rounds.devlog MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda \
        python3 -m mlx_asv.gpu.gpu_rounds --rounds ${ROUNDS:-6} --out $S/rounds --bench "$BDEV" --machine $M \
        --budget-s $(( $(left) - 15 )) --first-run-s 80 --extra-path /tmp/site a=/tmp/mlx-$a b=/tmp/mlx-$b > $S/rounds.log 2>&1
      log "rounds a=$a b=$b: rc=$? $(( $(el) - t )) s, $(ls $S/rounds/*.json 2>/dev/null | wc -l) run files"; tail -3 $S/rounds.log
      python3 -m studies.gpu_verdicts $S/rounds --base a --cand b --measure device > $S/rounds-verdicts.txt 2>&1
      tail -15 $S/rounds-verdicts.txt; save ;;
  esac
done
log finish; save; ls -la $OUT
