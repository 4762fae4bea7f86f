#!/usr/bin/env bash
# the cross-CPU counting bundle (issue 25): this machine's interpreter, libraries, MLX CPU wheel, NumPy and valgrind,
# to be unpacked at /tmp/xcpu on both machines and run by the same command (run.sh)
set -euo pipefail
B=/tmp/xcpu; rm -rf $B; mkdir -p $B/py/bin $B/lib $B/site $B/vg/libexec $B/src
P=/root/.pyenv/versions/3.11.7; V=/work/main/.venv/lib/python3.11/site-packages
cp $P/bin/python3.11 $B/py/bin/
mkdir -p $B/py/lib && tar -C $P/lib --exclude python3.11/test --exclude python3.11/site-packages --exclude python3.11/idlelib \
  --exclude python3.11/tkinter --exclude python3.11/turtledemo --exclude python3.11/ensurepip --exclude python3.11/lib2to3 \
  --exclude 'python3.11/config-3.11-*' -cf - python3.11 | tar -C $B/py/lib -xf -
cp -L $P/lib/libpython3.11.so.1.0 $B/lib/
for d in mlx mlx-0.32.4.dist-info mlx_cpu-0.32.4.dist-info mlx_cpu.libs numpy numpy-2.4.6.dist-info numpy.libs; do
  tar -C $V --exclude tests --exclude __pycache__ -cf - $d | tar -C $B/site -xf -; done
rm -rf $B/site/mlx/include $B/site/mlx/share
# the libraries every binary and extension needs, from this machine
for f in $B/py/bin/python3.11 $(find $B -name '*.so*' -type f); do ldd $f 2>/dev/null | awk '/=> \//{print $3} /^\s*\/lib64/{print $1}'; done |
  sort -u | grep -v "^$B" | while read -r l; do cp -L "$l" $B/lib/; done
cp -L /lib64/ld-linux-x86-64.so.2 $B/lib/
cp /usr/bin/valgrind.bin $B/vg/; cp /usr/libexec/valgrind/{callgrind-amd64-linux,vgpreload_core-amd64-linux.so,default.supp} $B/vg/libexec/
cp /usr/bin/setarch $B/; cp ~/.cache/mlx-asv/callgrind_marks-*.so $B/marks.so
tar -C /work/wt-gpu -cf - benchmarks | tar -C $B/src -xf -
find $B -name __pycache__ -path '*/src/*' -prune -exec rm -rf {} +
du -sh $B; ls $B/lib
tar -C /tmp -cf - xcpu | xz -6 -T1 > /work/main/.gpuwork/xcpu/xcpu.tar.xz; ls -la /work/main/.gpuwork/xcpu/xcpu.tar.xz
