"""The work of fused_ops.py's ``mlx_cpu`` cases: the instructions one call of
the callable asv times executes, under valgrind's callgrind, recorded by asv
with unit "instructions" (the base, ``define``, and what is skipped or
failed: benchmarks/work.py).

    asv run -b "^work_fused_ops\\." v0.32.4^!

One class per fused_ops.py family, named as there (``work_fused_ops.LayerNorm``
is fused_ops.LayerNorm's, not ops.LayerNorm's, which is ``work.LayerNorm``):
``work_fused_ops.RMSNorm.track_instructions('dim=32x4096 fwd+bwd', 'mlx_cpu')``
counts ``fused_ops.RMSNorm.time_rms_norm('dim=32x4096 fwd+bwd', 'mlx_cpu')``.
"""

from .work import define

define("fused_ops", globals())
