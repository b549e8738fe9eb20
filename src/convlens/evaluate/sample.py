"""The evaluation's own images: a seeded random sample of the split, stratified by class, chosen apart
from the figures' images (which the visualize stage picks for teaching: its most confident hits and
mistakes). Scores on a random sample estimate how a method behaves on the data; scores on chosen
images describe those images only."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit


def stratified_sample(labels: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` indices into ``labels`` (all of them when there are no more), drawn at random with
    ``seed`` and in proportion to each class's share (scikit-learn's ``StratifiedShuffleSplit``;
    a class with a single image is drawn as any other image), in ascending order."""
    labels = np.asarray(labels)
    if count >= len(labels):
        return list(range(len(labels)))
    if count < 1:
        raise ValueError(f"evaluate.images={count} must be >= 1")
    classes, counts = np.unique(labels, return_counts=True)
    if count < len(classes) or (counts < 2).any():
        chosen = np.random.default_rng(seed).choice(len(labels), size=count, replace=False)
        return sorted(int(index) for index in chosen)
    split = StratifiedShuffleSplit(n_splits=1, train_size=count, random_state=seed)
    chosen, _ = next(split.split(np.zeros(len(labels)), labels))
    return sorted(int(index) for index in chosen)
