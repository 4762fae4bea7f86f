"""Environments: the release ledger, MLX wheels and source builds, torch versions, config variants."""
