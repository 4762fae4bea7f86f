"""``mlx-asv regressions``: the site's regressions page, cut to confirmed verdicts; the code is mlx_asv.report.regressions."""

from mlx_asv.report.regressions import main  # noqa: F401
