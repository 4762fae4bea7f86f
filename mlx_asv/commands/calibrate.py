"""``mlx-asv calibrate``: the calibration study (the gate's false alarms, power and localization on this machine); the code is studies/calibrate.py, kept apart from the product with the other studies."""

from studies.calibrate import main  # noqa: F401
