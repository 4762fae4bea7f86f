#!/usr/bin/env bash
# issue 25 on the device machine: the bundle's callgrind counts of 15 mlx_cpu cases, 3 processes of 5 at once, twice
set -u
T0=$(date +%s); X=${X:-.gpuwork/xcpu}; O=/tmp/xo; mkdir -p $O
tar -C /tmp -xJf $X/xcpu.tar.xz
{ grep -m1 'model name' /proc/cpuinfo; grep -m1 -o 'avx512[a-z_]*' /proc/cpuinfo | head -3; nproc; uname -r; } > $O/cpu.txt 2>&1; cat $O/cpu.txt
for rep in 1 2; do
  for i in 0 1 2; do bash $X/run.sh $O/rep$rep-p$i $X/cases$i.json & done; wait
  echo "rep $rep done at $(( $(date +%s) - T0 )) s"; cat $O/rep$rep-p*/aslr.txt | sort | uniq -c; grep -h '"error"' $O/rep$rep-p*/child.jsonl | cut -c1-200
done
tail -3 $O/rep1-p0/valgrind.log
tar -C /tmp -cJf $OUT/xcpu-device.tar.xz xo; ls -la $OUT
