"""The evaluate stage (``make evaluate``): how far the maps of the visualize stage can be trusted.

One module per family of metrics, each batched over images (and perturbation steps) on the model's
device with a random-map baseline computed the same way: ``localisation`` (against ground-truth
masks), ``faithfulness`` (deletion, insertion, ROAD; ``imputation`` for ROAD), ``randomization``
(the cascade of Adebayo et al.; ``similarity`` for Spearman and SSIM) and ``robustness``
(max-sensitivity). ``registry`` declares the families (read by the report too, so this package
imports the stage, and torch, only when ``evaluate``/``evaluate_run`` is asked for); ``families``
runs them over every method, ``inputs`` reads the maps and images, ``recompute`` computes maps
afresh, ``scores`` turns values into cells tested against their baselines (``statistics``,
``baselines``), ``verdicts`` adjusts every test of the table together and gives each family's
verdict, ``schema`` types the config and ``stage`` writes ``<run>/evaluation/``.
"""

from typing import Any

__all__ = ["evaluate", "evaluate_run"]


def __getattr__(name: str) -> Any:
    """``evaluate`` and ``evaluate_run`` from :mod:`convlens.evaluate.stage`, imported on first use."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from convlens.evaluate import stage

    return getattr(stage, name)
