#!/usr/bin/env bash
# issue 27, device call 7: the device track's asv run on MLX 0.30.4, whose failed Sort cases leave CUDA's error
# behind for the next case of a process (the measuring child is replaced after each failure): does axis=2 run?
set -uo pipefail
T0=$(date +%s); LIMIT=${LIMIT:-200}
W=${W:-.gpuwork}; S=/tmp/flow5; mkdir -p $S
el() { echo $(( $(date +%s) - T0 )); }
[ -f $W/src.tar ] && tar -xf $W/src.tar
export PYTHONUNBUFFERED=1 MLX_ASV_INPUT_CACHE=/tmp/inputs
[ -d /tmp/mlx-0.30.4 ] || tar -C /tmp -xJf $W/mlx-0.30.4.tar.xz
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $W/whl/*.whl 2>&1 | tail -2
# asv imports importlib_metadata for version() alone; the standard library's has it
echo 'from importlib.metadata import *  # asv needs only version()' > /tmp/site/importlib_metadata.py
MLX_ASV_BACKENDS=mlx_gpu,mlx_gpu_compile,torch_cuda PYTHONPATH=/tmp/mlx-0.30.4:/tmp/site timeout $(( LIMIT - $(el) )) \
  bash mlx_asv/gpu/gpu_asv.sh h100 "^(ops\.track_mlx_version$|device\.)" $S/dev-0.30.4 > $S/dev-0.30.4.log 2>&1
echo "asv run dev-0.30.4: rc=$? wall $(el) s" | tee $S/go.log
grep -A12 "device.Sort.track_device_time" $S/dev-0.30.4.log | head -14
tar -C /tmp -cJf $OUT/flow5.tar.xz flow5; ls -la $OUT
