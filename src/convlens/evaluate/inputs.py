"""What the evaluation works on (images with their classes and masks, a method's maps) and the
visualize stage's records it reads: its manifest, and its kept maps (which ``make compare`` shows side
by side), checked.

Maps are input like any file of a run directory: a manifest path other than ``maps/<method>.npz``,
an array of the wrong shape or kind, or negative or non-finite values are refused with the file
named and the fix (rerun `make visualize`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from convlens import run_files
from convlens.registry import METHODS
from convlens.rundir import MANIFEST, MAPS_NAME, VISUALIZATIONS, RunDirError
from convlens.untrusted import UntrustedInputError, inside

MAPS_FILE = re.compile(rf"^{MAPS_NAME}/([a-z0-9_]+)\.npz$")


#: A row of maps: (index in the split the maps were drawn on, class explained). One image may be
#: explained for several classes (LIME explains a confused image for its true and its predicted class).
Key = tuple[int, int]


@dataclass(frozen=True)
class Images:
    """The (image, class) rows maps were drawn for (every method's, in first-seen order): model input
    (N, C, H, W) on the device, the class each is explained for (N,), their ``keys`` (N,), ground-truth
    masks (N, H, W) bool at input size (None without them), display images (N, H, W, C) in [0, 1],
    the true labels (N,) where known, the parts (N, H, W) uint8 at input size where the data has them, and
    the model's ``predicted`` classes (N,) where the stage computed them."""

    inputs: Tensor
    targets: Tensor
    keys: list[Key]
    masks: Tensor | None
    display: np.ndarray
    labels: list[int] | None = None
    parts: Tensor | None = None
    predicted: list[int] | None = None

    def positions(self, keys: list[Key]) -> Tensor:
        """Rows of these images for ``keys``."""
        row = {key: position for position, key in enumerate(self.keys)}
        return torch.tensor([row[key] for key in keys], device=self.inputs.device)


@dataclass(frozen=True)
class MethodMaps:
    """A method's maps as the visualize stage kept them: per layer ('' for a single map) (K, H, W), for
    the images at ``index`` (test-set indices) with their true ``labels`` and the ``targets`` explained,
    and the settings the method used; ``seconds``: the time computing them took (None when read from a
    file), summed over the processes that shared them."""

    name: str
    layers: dict[str, Tensor]
    index: list[int]
    labels: list[int]
    targets: list[int]
    parameters: dict[str, Any]
    seconds: float | None = None

    @property
    def keys(self) -> list[Key]:
        return list(zip(self.index, self.targets, strict=True))


def read_manifest(root: Path) -> dict[str, Any]:
    """The run's manifest through its checked reader (:func:`convlens.run_files.read_manifest`), which
    must list the methods whose maps are evaluated."""
    manifest = run_files.read_manifest(root)
    if manifest is None:
        raise RunDirError(f"{root} has no {MANIFEST}; run `make visualize RUN={root}` first")
    if not isinstance(manifest.get("methods"), dict):
        raise UntrustedInputError(f"{root / MANIFEST}: no 'methods' mapping; rerun `make visualize RUN={root}`")
    return manifest


def localising_methods(root: Path, manifest: dict[str, Any]) -> dict[str, MethodMaps]:
    """The maps of every method the manifest lists with ``maps`` (why the others have none:
    :func:`~convlens.evaluate.sample.planned_methods`)."""
    return {
        name: read_maps(root, name, summary) for name, summary in manifest["methods"].items() if summary.get("maps")
    }


def read_maps(root: Path, name: str, summary: dict[str, Any]) -> MethodMaps:
    """One method's ``visualizations/maps/<method>.npz``, checked."""
    relative = summary["maps"]
    match = MAPS_FILE.match(str(relative))
    if not match or match.group(1) != name or name not in METHODS:
        raise UntrustedInputError(
            f"{root / MANIFEST}: methods.{name}.maps={relative!r} is not "
            f"maps/<registered method>.npz; rerun `make visualize RUN={root}`"
        )
    path = inside(root, VISUALIZATIONS, relative)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("layers", "maps", "image_index", "labels", "targets")}
    except (OSError, ValueError, KeyError) as error:
        raise UntrustedInputError(f"{path} cannot be read ({error}); rerun `make visualize RUN={root}`") from error
    maps, layers = arrays["maps"], [str(layer) for layer in arrays["layers"]]
    rows = len(arrays["image_index"])
    if (
        maps.ndim != 4
        or maps.shape[:2] != (len(layers), rows)
        or {len(arrays["targets"]), len(arrays["labels"])} != {rows}
    ):
        raise UntrustedInputError(f"{path}: maps {maps.shape} do not fit {len(layers)} layers x {rows} images")
    if not np.isfinite(maps).all() or (maps < 0).any():
        raise UntrustedInputError(f"{path}: maps must be finite and non-negative; rerun `make visualize RUN={root}`")
    tensors = {layer: torch.from_numpy(maps[i].astype(np.float32)) for i, layer in enumerate(layers)}
    index, labels, targets = ([int(value) for value in arrays[key]] for key in ("image_index", "labels", "targets"))
    return MethodMaps(name, tensors, index, labels, targets, dict(summary.get("parameters") or {}))
