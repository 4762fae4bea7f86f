# Sourced by the device-call plans (go6.sh, go7.sh, go8.sh) after they define $W, $S and log():
# unpacks the release chunks ($W/c*.tar.xz, studies/gpu27/chunk.sh) into /tmp/mlx-V once per machine,
# installs asv's wheels ($W/whl) into /tmp/site, and writes the machine's GPU, driver and clocks to $S/env.txt.
export PYTHONUNBUFFERED=1 MLX_ASV_INPUT_CACHE=/tmp/inputs
for t in $W/c*.tar.xz; do [ -f $t ] && [ ! -f /tmp/.got-$(basename $t) ] || continue
  tar -C /tmp -xJf $t --skip-old-files && touch /tmp/.got-$(basename $t); log "unpacked $t"; done
ls -d /tmp/mlx-* | tr '\n' ' ' | tee -a $S/go.log; echo
if [ ! -f /tmp/site/importlib_metadata.py ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $W/whl/*.whl 2>&1 | tail -2
  # asv's importlib_metadata 10.2 needs lazy_importer, absent there; asv needs only version()
  echo 'from importlib.metadata import *  # asv needs only version()' > /tmp/site/importlib_metadata.py
fi
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,mig.mode.current,persistence_mode --format=csv
  python3 -c 'import torch; print("torch", torch.__version__)'; nproc; } > $S/env.txt 2>&1; cat $S/env.txt
M=h100; grep -q H200 $S/env.txt && M=h200; log "machine name $M"
