"""How a metric's per-image values become one cell of the table: means, and a paired test against
each of its baselines on the same images (:func:`convlens.evaluate.statistics.paired_test`).

Every metric gives one value per image for a method's maps and one per baseline (random maps, the
model-free ``edges`` and ``centre`` maps, or a fixed threshold) on the same images. A cell records
the means, the images counted, and per baseline the test (n, mean difference in the better
direction with its 95% interval, effect size, permutation p-value). Its marks wait for the whole
table: :func:`convlens.evaluate.verdicts.adjust_table` adjusts every p-value of the run together
(Benjamini-Hochberg) and marks each test; a cell's ``verdict`` is the mark against its ``reference``
(the first baseline, random maps).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch
from torch import Tensor

from convlens.evaluate.statistics import mark, paired_test

Better = Literal["higher", "lower"]
#: The baseline a cell compares with when it is given a single one.
RANDOM = "random"


def mean_of(values: Tensor) -> float | None:
    """The rounded mean of the finite values (None when there are none), as the JSON records it."""
    finite = values[torch.isfinite(values)].double()
    return rounded(float(finite.mean())) if len(finite) else None


def score(values: Tensor, baseline: Tensor | dict[str, Tensor], better: Better, **extra: Tensor) -> dict[str, Any]:
    """The JSON record of one metric: the mean of the method's values, of its reference baseline
    (``baseline``: one tensor, random maps, or baselines by name, the reference first; each (B,)), which
    direction is better, the images counted, the paired test ``against`` each baseline, and ``extra``
    per-image references (e.g. ``chance``, the mask area) as means. ``verdict`` is the mark against the
    reference on this cell's p-value alone until the table is adjusted."""
    baselines = baseline if isinstance(baseline, dict) else {RANDOM: baseline}
    reference = next(iter(baselines))
    against = {name: _test(values, values_of, better) for name, values_of in baselines.items()}
    record = {
        "value": mean_of(values),
        "baseline": against[reference]["mean"],
        "reference": reference,
        "better": better,
        "images": int(torch.isfinite(values).sum()),
        "against": against,
        "verdict": against[reference]["mark"],
    }
    return record | {name: mean_of(values_of) for name, values_of in extra.items()}


def _test(values: Tensor, baseline: Tensor, better: Better) -> dict[str, Any]:
    """One baseline's mean and the paired test of ``values`` against it, marked on its own p-value."""
    test = paired_test(values.detach().cpu().double().numpy(), baseline.detach().cpu().double().numpy(), better)
    fields = {name: rounded(value) if isinstance(value, float) else value for name, value in
              dataclasses.asdict(test).items()}  # fmt: skip
    return {"mean": mean_of(baseline), **fields, "p": test.p, "mark": mark(test, test.p)}


def rounded(value: float, digits: int = 4) -> float | None:
    """``value`` to ``digits`` decimals; None for NaN and infinity (JSON has neither)."""
    return round(value, digits) if math.isfinite(value) else None
