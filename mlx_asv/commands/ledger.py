"""``mlx-asv ledger``: build or update the release ledger asv benchmarks (tools/ledger.py); the code is mlx_asv.envs.ledger."""

from mlx_asv.envs.ledger import main  # noqa: F401
