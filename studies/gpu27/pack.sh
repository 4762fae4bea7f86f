#!/usr/bin/env bash
# unpack mlx + mlx-cuda-13 of each release, strip libmlx.so to sm_90 (mlx_asv/gpu/strip_fatbin.py), tar.xz
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "${W:-$root/.gpuwork}"   # wheels in dl/ (pip download ... mlx==V mlx-cuda-13==V)
for v in "$@"; do
  rm -rf stage/mlx-$v && mkdir -p stage/mlx-$v
  for w in dl/mlx-$v-*.whl dl/mlx_cuda_13-$v-*.whl; do unzip -q -o "$w" -d stage/mlx-$v; done
  lib=$(find stage/mlx-$v -name libmlx.so | head -1)
  "${PY:-python3}" "$root/mlx_asv/gpu/strip_fatbin.py" "$lib" --keep-arch 90 --zero-symtab --out "$lib.new" > strip-$v.log
  mv "$lib.new" "$lib"
  tar -C stage -cf - mlx-$v | xz -6 -T1 > mlx-$v.tar.xz
  ls -la mlx-$v.tar.xz
done
