"""The work of metal_kernels.py's CPU implementations (``ours_mlx_cpu``, our
pure-MLX composition on the CPU stream, and ``mlx_linalg_cpu``, mx.linalg):
the instructions one call of the callable asv times executes, under
valgrind's callgrind, recorded by asv with unit "instructions" (the base,
``define``, and what is skipped or failed: benchmarks/work.py).

    asv run -b "^work_metal_kernels\\." v0.32.4^!

One class per metal_kernels.py family, named as there, parametrized as it is
(``[case, implementation]``):
``work_metal_kernels.Cholesky.track_instructions('dim=500x16x16', 'ours_mlx_cpu')``
counts ``metal_kernels.Cholesky.time_cholesky('dim=500x16x16', 'ours_mlx_cpu')``.
The pure-MLX QR of the three largest single matrices is skipped, as
metal_kernels.py skips it (``PURE_MLX_CPU_QR_BUDGET``).
"""

from .work import define

define("metal_kernels", globals())
