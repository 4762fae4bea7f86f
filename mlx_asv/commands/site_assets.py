"""``mlx-asv site-assets``: local copies of the site's JavaScript; the code is mlx_asv.report.site_assets."""

from mlx_asv.report.site_assets import main  # noqa: F401
