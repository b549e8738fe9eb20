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

import numpy as np
import torch
from torch import Tensor

from convlens.evaluate.statistics import PairedTest, mark, paired_tests

Better = Literal["higher", "lower"]
#: The baseline a cell compares with when it is given a single one.
RANDOM = "random"


def mean_of(values: Tensor) -> float | None:
    """The rounded mean of the finite values (None when there are none), as the JSON records it."""
    finite = values[torch.isfinite(values)].double()
    return rounded(float(finite.mean())) if len(finite) else None


#: One cell to score: the method's per-image values, its baseline(s) (see :func:`score`), the better direction.
Cell = tuple[Tensor, Tensor | dict[str, Tensor], Better]


def score(values: Tensor, baseline: Tensor | dict[str, Tensor], better: Better, **extra: Tensor) -> dict[str, Any]:
    """The JSON record of one metric: the mean of the method's values, of its reference baseline
    (``baseline``: one tensor, random maps, or baselines by name, the reference first; each (B,)), which
    direction is better, the images counted, the paired test ``against`` each baseline, and ``extra``
    per-image references (e.g. ``chance``, the mask area) as means. ``verdict`` is the mark against the
    reference on this cell's p-value alone until the table is adjusted."""
    return scores({"": (values, baseline, better)}, **extra)[""]


def scores(cells: dict[str, Cell], **extra: Tensor) -> dict[str, dict[str, Any]]:
    """:func:`score` of each cell (by name, each with ``extra``), their paired tests run together
    (:func:`~convlens.evaluate.statistics.paired_tests`: the same tests, batched)."""
    named = {name: (values, _by_name(baseline), better) for name, (values, baseline, better) in cells.items()}
    pairs = [(_array(values), _array(found), better) for values, baselines, better in named.values()
             for found in baselines.values()]  # fmt: skip
    tests = iter(paired_tests(pairs))
    return {
        name: _record(values, {baseline: (found, next(tests)) for baseline, found in baselines.items()}, better, extra)
        for name, (values, baselines, better) in named.items()
    }


def _by_name(baseline: Tensor | dict[str, Tensor]) -> dict[str, Tensor]:
    return baseline if isinstance(baseline, dict) else {RANDOM: baseline}


def _array(values: Tensor) -> np.ndarray:
    return values.detach().cpu().double().numpy()


def _record(
    values: Tensor, tested: dict[str, tuple[Tensor, PairedTest]], better: Better, extra: dict[str, Tensor]
) -> dict[str, Any]:
    """One cell's record from its baselines' values and tests (the reference first)."""
    against = {name: _test_record(found, test) for name, (found, test) in tested.items()}
    reference = next(iter(against))
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


def _test_record(baseline: Tensor, test: PairedTest) -> dict[str, Any]:
    """One baseline's mean and the paired test against it, marked on its own p-value."""
    fields = {name: rounded(value) if isinstance(value, float) else value for name, value in
              dataclasses.asdict(test).items()}  # fmt: skip
    return {"mean": mean_of(baseline), **fields, "p": test.p, "mark": mark(test, test.p)}


def rounded(value: float, digits: int = 4) -> float | None:
    """``value`` to ``digits`` decimals; None for NaN and infinity (JSON has neither)."""
    return round(value, digits) if math.isfinite(value) else None
