"""The harness of a GPU machine, run from the repository root (a GPU host's
python lacks the package installed; there ``python -m mlx_asv.gpu.X`` finds
it): gpu_asv.sh (asv on the installed MLX), gpu_rounds (interleaved rounds of
it over several MLX installs), prepare_run (the input and kernel caches
before a run), device_kernels_check and device_models_table (timed without
asv), the one timing rule those two share (timing), merge_results and
strip_fatbin.  The GPU studies (gpu_verdicts, device_study, launch_cost,
process_profile, tf32_error) are in studies/."""
