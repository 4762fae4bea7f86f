"""Harnesses for a GPU machine (run from the repository root): gpu_asv.sh,
device_kernels_check.py, device_models_table.py, tf32_error.py, and the one
timing rule the Python ones share (timing.py)."""
