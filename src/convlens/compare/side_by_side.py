"""The same test images under every attribution method, per architecture: the maps each run's visualize
stage kept (``visualizations/maps/<method>.npz``, read and checked as the evaluate stage reads them),
for the images every run explained as correctly classified, and those images from the runs' data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from convlens.evaluate.inputs import MethodMaps, localising_methods, read_manifest
from convlens.registry import title
from convlens.report.run_data import RunData
from convlens.untrusted import UntrustedInputError, instantiate_allowed


@dataclass(frozen=True)
class SideBySide:
    """``images`` (test-set indices) with their ``labels`` and ``display`` images (N, H, W, C) in [0, 1];
    ``methods`` the method names every run kept maps of, ``layers`` per method the layer shown ('' for a
    single map); ``maps[architecture][method]`` (N, H, W) at that layer, each for the image's true class;
    ``correct[architecture]`` (N,) whether it classified each image correctly; ``left_out`` the methods
    some run lacks."""

    images: list[int]
    labels: list[int]
    display: np.ndarray
    methods: list[str]
    layers: dict[str, str]
    maps: dict[str, dict[str, np.ndarray]]
    correct: dict[str, list[bool]]
    left_out: list[str]

    def column(self, method: str) -> str:
        layer = self.layers[method]
        return f"{title(method)} @ {layer}" if layer else title(method)


def check_same_data(names: Sequence[str], runs: Sequence[RunData]) -> None:
    """Images are compared by their test-set index, so every run must have read the same data."""
    first = OmegaConf.to_container(runs[0].config.data, resolve=True)
    for name, run in zip(names[1:], runs[1:], strict=True):
        if OmegaConf.to_container(run.config.data, resolve=True) != first:
            raise UntrustedInputError(
                f"{run.label} ({name}) was trained on other data than {runs[0].label} ({names[0]}): its config's "
                "data section differs, so its test images are not the same; compare runs of one experiment with "
                "the same data settings (reuse=false trains them alike)"
            )


def side_by_side(names: Sequence[str], runs: Sequence[RunData], count: int) -> SideBySide | None:
    """Up to ``count`` images every run explained for their true class with every common method (those
    every architecture classified correctly first, then by index), or None when there are none."""
    kept = {name: localising_methods(Path(run.root), read_manifest(Path(run.root)))
            for name, run in zip(names, runs, strict=True)}  # fmt: skip
    every = list(dict.fromkeys(method for found in kept.values() for method in found))
    methods = [method for method in every if all(method in found for found in kept.values())]
    if not methods:
        return None
    rows = {name: {method: _true_class_rows(found[method]) for method in methods} for name, found in kept.items()}
    common = set.intersection(*[set(found) for by_method in rows.values() for found in by_method.values()])
    hits = {name: _hits(run) for name, run in zip(names, runs, strict=True)}
    images = sorted(common, key=lambda image: (not all(image in hit for hit in hits.values()), image))[:count]
    if not images:
        return None
    first = kept[names[0]][methods[0]]
    labels = [first.labels[first.index.index(image)] for image in images]
    maps = {name: {method: _maps(found[method], [rows[name][method][image] for image in images]) for method in methods}
            for name, found in kept.items()}  # fmt: skip
    correct = {name: [image in hits[name] for image in images] for name in names}
    layers = {method: _layer(kept, method) for method in methods}
    display = display_images(runs[0], images, labels)
    left_out = [method for method in every if method not in methods]
    return SideBySide(images, labels, display, methods, layers, maps, correct, left_out)


def _true_class_rows(maps: MethodMaps) -> dict[int, int]:
    """Test image -> the row of its map for its true class."""
    rows = {}
    for row, (index, label, target) in enumerate(zip(maps.index, maps.labels, maps.targets, strict=True)):
        if label == target:
            rows.setdefault(index, row)
    return rows


def _hits(run: RunData) -> set[int]:
    """Test images the run classified correctly, from its manifest's image records."""
    entries = (run.manifest or {}).get("entries") or []
    return {int(image["image_index"]) for entry in entries for image in entry.get("images") or []
            if isinstance(image, dict) and image.get("true_label") == image.get("predicted_label")
            and isinstance(image.get("image_index"), int)}  # fmt: skip


def _layer(kept: dict[str, dict[str, MethodMaps]], method: str) -> str:
    """The deepest layer of ``method``: its name when every architecture has one by that name, else a word."""
    names = {list(found[method].layers)[-1] for found in kept.values()}
    return names.pop() if len(names) == 1 else "deepest layer"


def _maps(maps: MethodMaps, rows: list[int]) -> np.ndarray:
    """The deepest layer's maps (N, H, W) at ``rows``."""
    return list(maps.layers.values())[-1][rows].numpy()


def display_images(run: RunData, images: list[int], labels: list[int]) -> np.ndarray:
    """The test images at ``images`` as shown (N, H, W, C) in [0, 1], read through the run's data module;
    their labels must be those the maps name (else the data changed since they were drawn)."""
    datamodule = instantiate_allowed(run.config.data, "data", on_device=False)
    split = datamodule.split("test")
    if split.labels[images].tolist() != labels:
        raise UntrustedInputError(
            f"{run.label}: the maps' labels are not those of test images {images}; the data changed since the maps "
            f"were drawn, rerun `make visualize RUN={run.label}`"
        )
    return datamodule.to_display(datamodule.preprocess(split.images[images]).cpu()).movedim(1, -1).numpy()
