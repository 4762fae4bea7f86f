"""Decisions: verdicts and their statistics, the gate's rule, steps between releases."""
