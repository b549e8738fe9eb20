"""What the evaluation reads from a run directory: the visualize stage's maps (checked), and the very
images, classes and ground-truth masks they were drawn for, on the evaluation's device.

Maps are input like any file of a run directory: a manifest path other than ``maps/<method>.npz``,
an array of the wrong shape or kind, negative or non-finite values, or images that are not the
test images the labels say are refused with the file named and the fix (rerun `make visualize`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from convlens.explain.localisation import resize_masks
from convlens.registry import METHODS
from convlens.rundir import MANIFEST, MAPS_NAME, VISUALIZATIONS, RunDirError, TrainedRun
from convlens.untrusted import UntrustedInputError, inside

MAPS_FILE = re.compile(rf"^{MAPS_NAME}/([a-z0-9_]+)\.npz$")


#: A row of maps: (index in the split the maps were drawn on, class explained). One image may be
#: explained for several classes (LIME explains a confused image for its true and its predicted class).
Key = tuple[int, int]


@dataclass(frozen=True)
class Images:
    """The (image, class) rows maps were drawn for (every method's, in first-seen order): model input
    (N, C, H, W) on the device, the class each is explained for (N,), their ``keys`` (N,), ground-truth
    masks (N, H, W) bool at input size (None without them), and display images (N, H, W, C) in [0, 1]."""

    inputs: Tensor
    targets: Tensor
    keys: list[Key]
    masks: Tensor | None
    display: np.ndarray

    def positions(self, keys: list[Key]) -> Tensor:
        """Rows of these images for ``keys``."""
        row = {key: position for position, key in enumerate(self.keys)}
        return torch.tensor([row[key] for key in keys], device=self.inputs.device)


@dataclass(frozen=True)
class MethodMaps:
    """A method's maps as the visualize stage kept them: per layer ('' for a single map) (K, H, W), for
    the images at ``index`` (test-set indices) with their true ``labels`` and the ``targets`` explained,
    and the settings the method used."""

    name: str
    layers: dict[str, Tensor]
    index: list[int]
    labels: list[int]
    targets: list[int]
    parameters: dict[str, Any]

    @property
    def keys(self) -> list[Key]:
        return list(zip(self.index, self.targets, strict=True))


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise RunDirError(f"{root} has no {MANIFEST}; run `make visualize RUN={root}` first")
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("methods"), dict):
        raise UntrustedInputError(f"{path}: no 'methods' mapping; rerun `make visualize RUN={root}`")
    return manifest


def localising_methods(root: Path, manifest: dict[str, Any]) -> tuple[dict[str, MethodMaps], dict[str, str]]:
    """The maps of every method the manifest lists with ``maps``, and why each other registered
    localising method (one whose result offers maps) has none."""
    found, missing = {}, {}
    for name, summary in manifest["methods"].items():
        if summary.get("maps"):
            found[name] = read_maps(root, name, summary)
        elif summary.get("skipped"):
            missing[name] = f"the visualize stage skipped it: {summary['skipped']}"
    return found, missing


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


def load_images(run: TrainedRun, methods: dict[str, MethodMaps], device: torch.device, split_name: str) -> Images:
    """Every (image, class) some method's maps were drawn for, with its mask, checked against the data
    of ``split_name``, the split the manifest says they were drawn on."""
    if split_name not in ("train", "val", "test"):
        raise UntrustedInputError(
            f"{run.root / MANIFEST}: split={split_name!r} is none of train, val, test; rerun `make visualize`"
        )
    split = run.datamodule.split(split_name)
    keys = list(dict.fromkeys(key for maps in methods.values() for key in maps.keys))
    if any(not 0 <= value < len(split.labels) for value, _ in keys):
        raise UntrustedInputError(f"{run.root}: maps name {split_name} images beyond the {len(split.labels)} there are")
    if any(not 0 <= target < len(run.class_names) for _, target in keys):
        raise UntrustedInputError(
            f"{run.root}: maps explain a class beyond the {len(run.class_names)} classes; rerun `make visualize`"
        )
    _check_labels(run, methods, split.labels, split_name)
    index = [value for value, _ in keys]
    targets = torch.tensor([target for _, target in keys])
    inputs = run.datamodule.preprocess(split.images[index]).to(device)
    display = run.datamodule.to_display(inputs.cpu()).movedim(1, -1).numpy()
    for maps in methods.values():
        _check_size(run, maps, tuple(inputs.shape[-2:]))
    masks = None if split.masks is None else resize_masks(split.masks[index], tuple(inputs.shape[-2:])).to(device)
    return Images(inputs, targets.to(device), keys, masks, display)


def _check_labels(run: TrainedRun, methods: dict[str, MethodMaps], labels: Tensor, split_name: str) -> None:
    """The maps' labels must be those of the images they name (else the data changed since)."""
    for maps in methods.values():
        if labels[maps.index].tolist() != maps.labels:
            raise UntrustedInputError(
                f"{run.root}: the labels in maps/{maps.name}.npz are not those of {split_name} images "
                f"{maps.index[:5]}...; "
                f"the data changed since the maps were drawn, rerun `make visualize RUN={run.root}`"
            )


def _check_size(run: TrainedRun, maps: MethodMaps, size: tuple[int, int]) -> None:
    for layer, values in maps.layers.items():
        if tuple(values.shape[-2:]) != size:
            raise UntrustedInputError(
                f"{run.root}: maps/{maps.name}.npz layer {layer!r} is {tuple(values.shape[-2:])}, the model input "
                f"{size}; the maps were drawn for another run, rerun `make visualize RUN={run.root}`"
            )
