"""mlx-asv: asv benchmarks of MLX releases next to PyTorch.

Sub-packages by kind of code; imports go one way only (tests/test_layering.py):
envs (release ledger, installs) -> measure (rounds, instruction counts) ->
decide (verdicts, the gate, steps) -> report (tables, plots, site) -> commands
(the ``mlx-asv`` console command).  docs/package-layout.md has the map.
"""
