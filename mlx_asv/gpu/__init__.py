"""Harnesses for a GPU machine (run from the repository root): gpu_asv.sh,
gpu_rounds.py (interleaved rounds of it over several MLX installs),
device_kernels_check.py, device_models_table.py, tf32_error.py, and the one
timing rule the Python ones share (timing.py); gpu_verdicts.py decides the
rounds' comparisons anywhere."""
