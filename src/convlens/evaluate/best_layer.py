"""Which layer of a method drawn at several layers (Grad-CAM, Guided Grad-CAM, LayerCAM) this run's
evaluation supports best, so that a figure showing one layer per method shows that one and says why
(a figure at the deepest layer shows CAMs at the layer they may fail worst at, e.g. a 3x3 map).

The rule, from the per-family verdicts (:mod:`convlens.evaluate.verdicts`): the most families supported; among
equals the fewest not supported, then the fewest shown to fail (a score worse than its reference or than a model-free
map, a randomization cascade that shows the map insensitive to the weights, or maps that repeat a pattern of their own
across images, ``alike_across_images.repeats``: "not supported" also covers a check that could not decide), then the
higher pointing game (where localisation was scored), then the maps less alike across images
(``alike_across_images.value``: without masks "repeats" stays undecided, and on FER2013 the depth tie-break showed
Grad-CAM at ``layer4.relu2``, whose maps correlate 0.64 across faces, the same blob on every face, where at
``layer2.relu2`` they correlate 0.13), then the deeper layer.
"""

from __future__ import annotations

import math
from typing import Any

from convlens.evaluate.baselines import NAMES as MODEL_FREE


def best_layer(layers: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """``{"layer", "supported" (families), "why"}`` for a method with several layers; None for one layer."""
    if len(layers) < 2:
        return None
    ranked = max(enumerate(layers.items()), key=lambda item: _rank(item[0], item[1][1]))
    layer, record = ranked[1]
    verdicts = record.get("verdicts") or {}
    supported = [family for family, found in verdicts.items() if found["verdict"] == "supported"]
    others = " or ".join(name for name in layers if name != layer)
    families = ", ".join(supported) or "none"
    why = f"{len(supported)} of {len(verdicts)} families supported ({families}), no more at {others}"
    return {"layer": layer, "supported": supported, "why": why}


def _rank(depth: int, record: dict[str, Any]) -> tuple[int, int, int, float, float, int]:
    verdicts = [found["verdict"] for found in (record.get("verdicts") or {}).values()]
    pointing = ((record.get("localisation") or {}).get("pointing_game") or {}).get("value")
    alike = (record.get("alike_across_images") or {}).get("value")
    return (verdicts.count("supported"), -verdicts.count("not supported"), -_shown_to_fail(record),
            -math.inf if pointing is None else pointing, -math.inf if alike is None else -alike, depth)  # fmt: skip


def _shown_to_fail(record: dict[str, Any]) -> int:
    """The scores worse than their reference (marked ``below``) or than a model-free map other than their reference
    (max-sensitivity's is the edge map: counted once), an insensitive randomization cascade and maps that repeat a
    pattern whatever the image. FER2013's Grad-CAM at ``layer2.relu2``, worse than the centred blob on deletion and
    ROAD, was shown as the best layer by the alike tie-break, where ``layer3.relu2`` is worse than neither; the FER
    CNN's 6x6 ``layer4.relu2`` CAMs of the synthetic faces draw the face's outline on every face (a repeat)."""
    cells = [cell for family in ("localisation", "faithfulness", "robustness")
             for cell in (record.get(family) or {}).values() if isinstance(cell, dict)]  # fmt: skip
    worse = sum(cell.get("verdict") == "below" for cell in cells)
    worse_than_model_free = sum((cell.get("against") or {}).get(name, {}).get("mark") == "below"
                                for cell in cells for name in MODEL_FREE if name != cell.get("reference"))  # fmt: skip
    insensitive = (record.get("randomization") or {}).get("verdict") == "insensitive"
    repeats = bool((record.get("alike_across_images") or {}).get("repeats"))
    return worse + worse_than_model_free + insensitive + repeats


def add_best_layers(methods: dict[str, Any]) -> None:
    """Set ``best_layer`` on every method of ``evaluation.json`` drawn at several layers."""
    for method in methods.values():
        found = best_layer(method["layers"])
        if found is not None:
            method["best_layer"] = found
