"""Reporting on this suite's asv results: reading them (results), statistics
(stats), tables (render), plots (plots), the CLI (report), verdicts (verdicts)
and the site's local JavaScript copies (site_assets)."""
