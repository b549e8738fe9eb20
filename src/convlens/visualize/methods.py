"""Planning and running one registered method: its settings, its figures and its manifest entries.

:func:`plan` checks every method, setting and layer name before any work; :func:`run_method` calls
the method's explain function on its images, its figure function on the result, saves the figures
and returns their manifest entries (with the seconds each took: its share of the computation plus
its own drawing, so computation and drawing are timed alike).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from convlens import atomic
from convlens.explain.localisation import localisation_scores
from convlens.explain.method import Localising, MethodParams, NotApplicable
from convlens.figures.shown import Drawn
from convlens.models.layers import resolve_layer
from convlens.registry import METHODS, MethodSpec, load, method_settings
from convlens.visualize.context import Context, Explained

log = logging.getLogger(__name__)

#: Settings that name layers; they are checked against the model before anything runs.
LAYER_FIELDS = ("layer", "layers", "block")
#: Where a method's localisation maps are kept for the evaluation stage, relative to visualizations/.
MAPS = "maps"


@dataclass(frozen=True)
class Planned:
    """A method ready to run: its declaration, its resolved settings, or why it does not apply."""

    spec: MethodSpec
    params: MethodParams
    skipped: str | None = None

    def parameters(self) -> dict[str, Any]:
        return self.params.as_dict()


@dataclass(frozen=True)
class MethodResult:
    """What one method left for the manifest: its run time, its figures, and why it drew none."""

    seconds: float
    entries: list[dict[str, Any]]
    skipped: str | None = None
    maps: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    readings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def summary(self, parameters: dict[str, Any]) -> dict[str, Any]:
        extra = {"skipped": self.skipped, "maps": self.maps, "notes": self.notes, "readings": self.readings}
        return {"seconds": round(self.seconds, 3), "parameters": parameters, **{k: v for k, v in extra.items() if v}}


def plan(methods: list[str] | None, params: Mapping[str, Any] | None, model: nn.Module) -> dict[str, Planned]:
    """Every method (None: all registered) with its resolved settings, checked before any work."""
    names = list(METHODS) if methods is None else list(methods)
    return {name: _plan_one(name, (params or {}).get(name), model) for name in names}


def _plan_one(name: str, given: Mapping[str, Any] | None, model: nn.Module) -> Planned:
    params = method_settings(name, given)
    spec = METHODS[name]
    reason = load(spec.applies_to)(model) if spec.applies_to else None
    if reason:
        return Planned(spec, params, reason)
    resolved = params.resolved(model)
    for key in LAYER_FIELDS:
        value = getattr(resolved, key, None)
        for layer in [value] if isinstance(value, str) else value or []:
            resolve_layer(model, layer)
    return Planned(spec, resolved)


def run_method(ctx: Context, planned: Planned, out_dir: Path) -> MethodResult:
    """Compute, draw and save one method; a method that does not apply is recorded with the reason."""
    spec, params = planned.spec, planned.params
    started = time.perf_counter()
    if planned.skipped:
        log.info("%s: skipped, %s", spec.name, planned.skipped)
        return MethodResult(time.perf_counter() - started, [], skipped=planned.skipped)
    explained = ctx.chosen.explained(params, spec.explains_class)
    try:
        result = load(spec.compute)(ctx.model, ctx.batch(explained), params)
    except NotApplicable as reason:
        log.info("%s: skipped, %s", spec.name, reason)
        return MethodResult(time.perf_counter() - started, [], skipped=str(reason))
    drawn = load(spec.draw)(result, ctx.chosen.shown(spec.title, explained), params)
    compute = (time.perf_counter() - started) / max(len(drawn), 1)
    seconds = [_save(item, out_dir / spec.name) for item in drawn]
    scores = _scores(ctx, result, explained)
    entries = [
        _entry(ctx, spec.name, item, explained, planned.parameters(), compute + s, scores)
        for item, s in zip(drawn, seconds, strict=True)
    ]
    maps = save_maps(ctx, result, explained, out_dir / MAPS / f"{spec.name}.npz")
    total = time.perf_counter() - started
    log.info("%s: %d figures in %.1f s", spec.name, len(drawn), total)
    notes = result.notes() if hasattr(result, "notes") else []
    readings = result.readings() if hasattr(result, "readings") else {}
    return MethodResult(total, entries, maps=maps and f"{MAPS}/{spec.name}.npz", notes=notes, readings=readings)


def save_maps(ctx: Context, result: object, explained: Explained, path: Path) -> bool:
    """Keep a localising result's maps for the evaluation stage: ``maps`` (L, K, H, W) float32 for
    ``layers`` (L,) ('' for a method's single map), with the images' ``image_index``, true ``labels``
    and explained ``targets`` (K,). Returns whether there were maps to keep."""
    if not isinstance(result, Localising) or not (found := result.localisation_maps()):
        return False
    selection, positions = ctx.chosen.selection, explained.positions
    arrays = {
        "layers": np.array([layer or "" for layer in found]),
        "maps": np.stack([np.asarray(maps, dtype=np.float32) for maps in found.values()]),
        "image_index": selection.indices[positions].numpy(),
        "labels": selection.labels[positions].numpy(),
        "targets": np.asarray(explained.targets, dtype=np.int64),
        "groups": np.array(explained.groups),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic.write_bytes(path, buffer.getvalue())
    return True


def _save(item: Drawn, folder: Path) -> float:
    """Draw and save one figure; the seconds it took."""
    started = time.perf_counter()
    atomic.save_figure(item.figure(), folder / f"{item.key}.png")
    return time.perf_counter() - started


def _scores(ctx: Context, result: object, explained: Explained) -> dict[int | None, dict[str, float]]:
    """Extra numbers per result row (image), and under None for the model alone: the result's own
    ``scores`` and, where the data has masks, the mask scores of its maps (see
    :mod:`convlens.explain.localisation`)."""
    own = getattr(result, "scores", lambda row: {})
    rows: dict[int | None, dict[str, float]] = {row: own(row) for row in range(len(explained.positions))}
    if ctx.chosen.masks is not None:
        masks = localisation_scores(result, ctx.chosen.masks[explained.positions])
        rows = {row: rows[row] | mask for row, mask in enumerate(masks)}
    return rows | {None: own(None)}


def _entry(
    ctx: Context,
    method: str,
    item: Drawn,
    explained: Explained,
    parameters: dict[str, Any],
    seconds: float,
    scores: dict[int | None, dict[str, float]],
) -> dict[str, Any]:
    """A manifest entry: the figure, and per image it shows (in its order) the image, its group and scores."""
    images = [
        ctx.chosen.record(explained.positions[row], explained.targets[row]) | {"group": explained.groups[row]}
        | ({"pairs_from": ctx.chosen.pairs_from} if explained.groups[row] == "confused" else {}) | scores[row]
        for row in item.rows
    ]  # fmt: skip
    model = {} if item.rows else scores[None]
    return {"method": method, "file": f"{method}/{item.key}.png", "layer": item.layer, "images": images,
            "parameters": parameters, "seconds": round(seconds, 4), **model}  # fmt: skip
