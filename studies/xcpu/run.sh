#!/usr/bin/env bash
# count CASES (a JSON list of [key, family, label, backend]) in one callgrind process, with the bundle's everything
# usage: bash run.sh OUTDIR CASES.json     (the bundle unpacked at /tmp/xcpu)
set -u
B=/tmp/xcpu; O=$1; mkdir -p $O; mkdir -p /tmp/xcpuhome
S=""; $B/setarch -R true 2>/dev/null && S="$B/setarch -R"; echo "setarch -R: ${S:-unavailable}" > $O/aslr.txt
env -i PATH=/usr/bin:/bin HOME=/tmp/xcpuhome OMP_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONHOME=$B/py PYTHONPATH=$B/src:$B/site \
  PYTHONNOUSERSITE=1 MLX_ASV_INPUT_CACHE=off GLIBCXX_FORCE_NEW=1 GLIBCPP_FORCE_NEW=1 VALGRIND_LIB=$B/vg/libexec \
  $S $B/vg/valgrind.bin --tool=callgrind --instr-atstart=no --dump-line=no --callgrind-out-file=$O/callgrind.%p \
  --log-file=$O/valgrind.log $B/lib/ld-linux-x86-64.so.2 --library-path $B/lib $B/py/bin/python3.11 \
  $B/src/benchmarks/lib/count_child.py $2 1 $B/marks.so > $O/child.jsonl 2>&1
echo "rc=$?" >> $O/aslr.txt
