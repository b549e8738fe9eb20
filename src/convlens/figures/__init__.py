"""Matplotlib figures: arrays in, PNG files (or Figure objects) out; no computation here."""

import matplotlib

matplotlib.use("Agg")
