"""Measurement: resolving releases, asv rounds and their results, instruction counts."""
