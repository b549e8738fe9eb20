"""What the evaluation's comparison figure shows: every evaluated method on the same images of its own
sample (the first image of each class, up to :data:`MAX_IMAGES`, that is explained for its true class and
that every method has a map of), a method drawn at several layers at the layer the evaluation supports
best (:mod:`convlens.evaluate.best_layer`). The visualize stage's comparison cannot know that layer: it
runs before the evaluation and shows the deepest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.evaluate.families import Subject
from convlens.evaluate.inputs import Key
from convlens.registry import title

#: Columns of the figure: every class of the demos, CIFAR-10 and FER2013; more classes show their first 10.
MAX_IMAGES = 10


@dataclass(frozen=True)
class Comparison:
    """``display`` (N, H, W, C) images, ``maps`` per row label (N, H, W), a label per image, the images'
    ``keys`` and the layer shown per method ('' for a single map)."""

    display: np.ndarray
    maps: dict[str, np.ndarray]
    labels: list[str]
    keys: list[Key]
    layers: dict[str, str]


def comparison(subject: Subject, methods: dict[str, Any], class_names: list[str]) -> Comparison | None:
    """The payload, from the sample's maps and ``evaluation.json``'s ``methods``; None with fewer than two
    methods or no image that fits."""
    keys = _images(subject)
    if len(subject.methods) < 2 or not keys:
        return None
    layers = {name: (methods[name].get("best_layer") or {}).get("layer", next(iter(maps.layers)))
              for name, maps in subject.methods.items()}  # fmt: skip
    rows = {}
    for name, maps in subject.methods.items():
        positions = [maps.keys.index(key) for key in keys]
        label = f"{title(name)} @ {layers[name]}" if layers[name] else title(name)
        rows[label] = maps.layers[layers[name]][positions].cpu().numpy()
    display = subject.images.display[subject.images.positions(keys).cpu().numpy()]
    labels = [f"{class_names[key[1]]} #{key[0]}" for key in keys]
    return Comparison(display, rows, labels, keys, layers)


def _images(subject: Subject) -> list[Key]:
    """The first image of each class explained for its true class that every method has a map of."""
    images, shown = subject.images, {}
    common = set.intersection(*(set(maps.keys) for maps in subject.methods.values())) if subject.methods else set()
    for position, key in enumerate(images.keys):
        label = images.labels[position] if images.labels is not None else None
        if key in common and key[1] == label and label not in shown:
            shown[label] = key
    return list(shown.values())[:MAX_IMAGES]
