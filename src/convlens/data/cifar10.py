"""CIFAR-10 as decoded uint8 arrays, cached once as ``cifar10.npz`` in ``data_dir``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from convlens.data.arrays import ArraySplit, DatasetArrays, seeded_holdout

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CACHE_NAME = "cifar10.npz"
CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test")


class CIFAR10Source:
    """Official 50,000/10,000 CIFAR-10 with a seeded 45,000/5,000 train/val split.

    If ``data_dir/cifar10.npz`` exists it is used as it is (so a read-only folder works offline);
    otherwise torchvision downloads the dataset into ``data_dir`` and the cache is written there.
    """

    def __init__(self, data_dir: str, val_size: int = 5000, split_seed: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.val_size = val_size
        self.split_seed = split_seed

    def load(self) -> DatasetArrays:
        cache = self.data_dir / CACHE_NAME
        if not cache.exists():
            write_cache(cache, download(self.data_dir))
        arrays = read_cache(cache)
        train = ArraySplit(arrays["x_train"], arrays["y_train"].astype(np.int64))
        keep, held_out = seeded_holdout(len(train), self.val_size, self.split_seed)
        test = ArraySplit(arrays["x_test"], arrays["y_test"].astype(np.int64))
        return DatasetArrays(train.subset(keep), train.subset(held_out), test, CIFAR10_CLASSES, (cache,))


def read_cache(path: Path) -> dict[str, np.ndarray]:
    """Read the npz cache without pickle; a damaged file gets an error that says how to rebuild it."""
    fix = f"delete {path} and rerun online to rebuild it, or copy a complete cifar10.npz there"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in CACHE_KEYS if key not in npz.files]
            if missing:
                raise ValueError(f"{path} lacks arrays {missing}; {fix}")
            arrays = {key: npz[key] for key in CACHE_KEYS}
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as error:
        raise ValueError(f"{path} is not a readable npz cache ({error}); {fix}") from error
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"{path}: x_{split} must be uint8 (N, 32, 32, 3), got {images.dtype} {images.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{path}: y_{split} has {len(labels)} labels for {len(images)} images; {fix}")
    return arrays


def download(data_dir: Path) -> dict[str, np.ndarray]:
    """Fetch CIFAR-10 with torchvision (needs the internet once) and return its decoded arrays."""
    from torchvision.datasets import CIFAR10

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        train = CIFAR10(str(data_dir), train=True, download=True)
        test = CIFAR10(str(data_dir), train=False, download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError, ... when offline
        raise RuntimeError(
            f"CIFAR-10 is not in {data_dir} and could not be downloaded ({error}). Run once with internet "
            f"access, or put a cifar10.npz (uint8 x_train, y_train, x_test, y_test) into {data_dir} "
            "and pass data.data_dir=<that folder>."
        ) from error
    return {
        "x_train": train.data, "y_train": np.asarray(train.targets, np.int64),
        "x_test": test.data, "y_test": np.asarray(test.targets, np.int64),
    }  # fmt: skip


def write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically, so an interrupted run never leaves a truncated cache behind."""
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
