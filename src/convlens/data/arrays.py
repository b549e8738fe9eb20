"""The in-memory form every dataset source returns: decoded uint8 arrays per split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ArraySplit:
    """One split: ``images`` uint8 (N, H, W, C), ``labels`` int64 (N,), optional bool ``masks`` (N, H, W)
    of the class evidence, optional uint8 ``parts`` (N, H, W): each pixel's part, an index into
    :attr:`DatasetArrays.part_names`."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None
    parts: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ArraySplit:
        masks = None if self.masks is None else self.masks[indices]
        parts = None if self.parts is None else self.parts[indices]
        return ArraySplit(self.images[indices], self.labels[indices], masks, parts)


#: The splits every source has.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetArrays:
    """A dataset: its splits (None: a split the source was not asked for and did not load), the class
    names in label order, and the files it was read from; where the splits carry ``parts``, their names
    and where they come from (``parts_from``, in words: drawn by the generator, or fixed bands of an
    aligned face); ``splits_from``, in words, where each split's images come from (the report's Setup)."""

    train: ArraySplit | None
    val: ArraySplit | None
    test: ArraySplit | None
    class_names: tuple[str, ...]
    files: tuple[Path, ...] = field(default_factory=tuple)
    part_names: tuple[str, ...] = ()
    parts_from: str = ""
    splits_from: str = ""

    def split(self, name: str) -> ArraySplit | None:
        if name not in SPLITS:
            raise ValueError(f"unknown split '{name}'; valid splits: {', '.join(SPLITS)}")
        return getattr(self, name)


def class_name(class_names: tuple[str, ...] | list[str], label: int) -> str:
    """The name of class ``label`` in label-ordered ``class_names``; its number where the names do not reach it
    (a run without names, or a label beyond them)."""
    return class_names[label] if 0 <= label < len(class_names) else str(label)


def seeded_holdout(count: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(count)`` into (kept, held-out) indices with a seeded permutation."""
    if not 0 < holdout < count:
        raise ValueError(f"validation size {holdout} must be between 1 and {count - 1}")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[holdout:]), np.sort(order[:holdout])
