"""The evaluate stage (``make evaluate``): how far the maps of the visualize stage can be trusted.

One module per family of metrics, each batched over images (and perturbation steps) on the model's
device with a random-map baseline computed the same way: ``localisation`` (against ground-truth
masks), ``faithfulness`` (deletion, insertion, ROAD; ``imputation`` for ROAD), ``randomization``
(the cascade of Adebayo et al.; ``similarity`` for Spearman and SSIM) and ``robustness``
(max-sensitivity). ``families`` runs them over every method, ``inputs`` reads the maps and images,
``recompute`` computes maps afresh, ``scores`` turns values into scores and verdicts, ``schema``
types the config and ``stage`` writes ``<run>/evaluation/``.
"""

from convlens.evaluate.stage import evaluate, evaluate_run

__all__ = ["evaluate", "evaluate_run"]
