"""Reporting: reading asv results, statistics, tables, plots, the report, the torch-version report,
the regressions page and the site's local JavaScript copies."""
