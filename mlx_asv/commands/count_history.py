"""``mlx-asv count-history``: an instruction-count run over releases as asv results; the code is mlx_asv.report.count_history."""

from mlx_asv.report.count_history import main  # noqa: F401
