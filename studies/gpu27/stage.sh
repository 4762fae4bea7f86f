set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
for v in "$@"; do
  rm -rf stage/mlx-$v && mkdir -p stage/mlx-$v
  for w in dl/mlx-$v-*.whl dl/mlx_cuda_13-$v-*.whl; do unzip -q -o "$w" -d stage/mlx-$v; done
  lib=$(find stage/mlx-$v -name libmlx.so | head -1)
  "${PY:-python3}" "$root/mlx_asv/gpu/strip_fatbin.py" "$lib" --keep-arch 90 --zero-symtab --out "$lib.new" > strip-$v.log
  mv "$lib.new" "$lib"; du -sb stage/mlx-$v
done
