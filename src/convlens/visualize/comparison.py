"""After every method ran: one figure of the same correctly classified images under every method that
localises evidence, read back from the maps the methods kept (``maps/<method>.npz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convlens import atomic, registry
from convlens.figures.comparison import comparison_figure
from convlens.visualize.context import Context
from convlens.visualize.methods import MethodResult

FILE = "comparison.png"
#: Images (columns) in the comparison: the first correctly classified image of each of the first N classes.
MAX_IMAGES = 6


def write_comparison(ctx: Context, results: dict[str, MethodResult], out_dir: Path) -> dict[str, Any] | None:
    """Draw the comparison into ``out_dir``; its manifest record, or None with fewer than two methods."""
    kept = {name: np.load(out_dir / result.maps, allow_pickle=False) for name, result in results.items() if result.maps}
    common = _common_correct_images(kept.values())[:MAX_IMAGES]
    if len(kept) < 2 or not common:
        return None
    maps = {f"{registry.title(name)}{_layer(arrays)}": _deepest(arrays, common) for name, arrays in kept.items()}
    positions = [int(np.nonzero(ctx.chosen.selection.indices.numpy() == index)[0][0]) for index in common]
    labels = [f"{ctx.chosen.class_names[int(ctx.chosen.selection.labels[p])]} #{index}"
              for p, index in zip(positions, common, strict=True)]  # fmt: skip
    title = "Every attribution method on the same correctly classified test images"
    atomic.save_figure(comparison_figure(ctx.chosen.display[positions], maps, labels, title), out_dir / FILE)
    return {"file": FILE, "methods": list(kept), "image_index": common}


def _common_correct_images(kept: Any) -> list[int]:
    """Test-set indices of the images every method explained as correctly classified, in the first method's order."""
    kept = list(kept)
    if not kept:
        return []
    sets = [{int(i) for i, g in zip(a["image_index"], a["groups"], strict=True) if g == "correct"} for a in kept]
    first = [int(i) for i, g in zip(kept[0]["image_index"], kept[0]["groups"], strict=True) if g == "correct"]
    return [index for index in dict.fromkeys(first) if all(index in found for found in sets)]


def _deepest(arrays: Any, indices: list[int]) -> np.ndarray:
    """The method's last map (its deepest layer, for per-layer methods) of each image in ``indices``."""
    rows = [
        int(np.nonzero((arrays["image_index"] == index) & (arrays["groups"] == "correct"))[0][0]) for index in indices
    ]
    return arrays["maps"][-1][rows]


def _layer(arrays: Any) -> str:
    layer = str(arrays["layers"][-1])
    return f" @ {layer}" if layer else ""
