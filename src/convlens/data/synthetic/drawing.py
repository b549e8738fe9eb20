"""Pieces both synthetic datasets share: the split type, sample checks, and anti-aliased drawing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Samples rendered at once: bounds peak memory and keeps the working set in cache.
CHUNK = 128


@dataclass(frozen=True)
class SyntheticSplit:
    """One generated split; ``images`` is uint8 (N, H, W, C), ``masks`` the class evidence (N, H, W),
    ``parts`` uint8 (N, H, W) each pixel's part (an index into the dataset's part names)."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    parts: np.ndarray


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of samples, got {n!r}")


def _balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n // num_classes`` per class, the remainder going to the first classes, shuffled."""
    return rng.permutation(np.arange(n, dtype=np.int64) % num_classes)


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, n).astype(np.float32)


def _col(values: np.ndarray) -> np.ndarray:
    """Per-sample values shaped to broadcast against (m, H, W) grids."""
    return values[:, None, None]


def _coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
