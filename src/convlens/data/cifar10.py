"""CIFAR-10 as decoded uint8 arrays: from a ``cifar10.npz`` in ``data_dir``, or from torchvision's
official ``cifar-10-batches-py/`` there (downloaded once when absent), decoded into a cache.

The official batches are pickles. They are unpickled only by torchvision's own loader and only
after every file's md5 matched torchvision's list of the published files, so a file that differs
from the published one by a single byte is refused before pickle reads it. (md5 collisions can be
made between two files an attacker crafts together; matching a fixed, published file would need
a second preimage, which no known attack provides.) This keeps torchvision's well-tested loader
rather than a hand-written pickle reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity, download_and_extract_archive

from convlens.data.arrays import SPLITS, ArraySplit, DatasetArrays, seeded_holdout
from convlens.data.cache import cache_folders, cached_arrays, read_npz

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
ARRAYS_NAME = "cifar10.npz"
KEYS = ("x_train", "y_train", "x_test", "y_test")


class CIFAR10Source:
    """Official 50,000/10,000 CIFAR-10 with a seeded 45,000/5,000 train/val split.

    ``data_dir/cifar10.npz`` (uint8 ``x_train, y_train, x_test, y_test``) is used as it is. Else the
    official batches in ``data_dir/cifar-10-batches-py/`` are checked and decoded into a cache in
    ``cache_dir`` (default: ``data_dir`` when writable, else the user cache folder); they are
    downloaded first only when that folder is absent, so a read-only copy works offline.
    """

    def __init__(self, data_dir: str, val_size: int = 5000, split_seed: int = 0, cache_dir: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.val_size = val_size
        self.split_seed = split_seed
        self.cache_dir = cache_dir

    def load(self, splits: Collection[str] = SPLITS) -> DatasetArrays:
        """Every split (one file holds them all), whichever ``splits`` are asked for."""
        arrays, files = self._arrays()
        train = ArraySplit(arrays["x_train"], arrays["y_train"].astype(np.int64))
        keep, held_out = seeded_holdout(len(train), self.val_size, self.split_seed)
        test = ArraySplit(arrays["x_test"], arrays["y_test"].astype(np.int64))
        origin = (f"train and val: the file's training images, {self.val_size:,} of them held out for val (seed "
                  f"{self.split_seed}); test: its test images")  # fmt: skip
        val = train.subset(held_out)
        return DatasetArrays(train.subset(keep), val, test, CIFAR10_CLASSES, files, splits_from=origin)

    def _arrays(self) -> tuple[dict[str, np.ndarray], tuple[Path, ...]]:
        """The arrays and the files they come from (recorded in a run's provenance)."""
        given = self.data_dir / ARRAYS_NAME
        if given.is_file():
            fix = f"rewrite {given} with np.savez (uint8 images, integer labels), or remove it to use the batches"
            return check_arrays(given, read_npz(given, KEYS, fix)), (given,)
        if not (self.data_dir / CIFAR10.base_folder).exists():
            download(self.data_dir)
        files = verify_batches(self.data_dir / CIFAR10.base_folder)
        name = f"cifar10-batches-{batches_digest()[:16]}.npz"
        folders = cache_folders(self.cache_dir, self.data_dir)
        arrays, cache = cached_arrays(name, folders, KEYS, lambda: decode_batches(self.data_dir))
        return check_arrays(cache, arrays), files


def official_files() -> list[tuple[str, str]]:
    """(file name, md5) of every file torchvision reads: the five train batches, the test batch, meta."""
    return [*map(tuple, CIFAR10.train_list + CIFAR10.test_list), (CIFAR10.meta["filename"], CIFAR10.meta["md5"])]


def batches_digest() -> str:
    """Names the cache after the batches' checksums, which :func:`verify_batches` has just confirmed."""
    return hashlib.sha256(repr(official_files()).encode()).hexdigest()


def verify_batches(folder: Path) -> tuple[Path, ...]:
    """Every official file present with its published md5; a missing or damaged one is named."""
    fix = f"restore it, or delete {folder} so that the next run (online) downloads CIFAR-10 again"
    for name, md5 in official_files():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"{path} is missing from the official CIFAR-10 layout; {fix}")
        if not check_integrity(path, md5):
            raise ValueError(
                f"{path}: md5 checksum failed (expected {md5}), so the file is damaged or not the official one "
                f"and was not read; {fix}"
            )
    return tuple(folder / name for name, _ in CIFAR10.train_list + CIFAR10.test_list)


def decode_batches(data_dir: Path) -> dict[str, np.ndarray]:
    """torchvision's decoding of the verified batches (it checks their md5s once more itself)."""
    train, test = CIFAR10(str(data_dir), train=True), CIFAR10(str(data_dir), train=False)
    return {
        "x_train": train.data, "y_train": np.asarray(train.targets, np.int64),
        "x_test": test.data, "y_test": np.asarray(test.targets, np.int64),
    }  # fmt: skip


def download(data_dir: Path) -> None:
    """Fetch and unpack the official archive into ``data_dir`` (needs the internet once)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(CIFAR10.url, str(data_dir), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except Exception as error:  # torchvision raises URLError, RuntimeError, OSError, ... when offline
        raise RuntimeError(
            f"CIFAR-10 is not in {data_dir} and could not be downloaded ({error}). Run once with internet "
            f"access, or put torchvision's {CIFAR10.base_folder}/ or a cifar10.npz (uint8 x_train, y_train, "
            f"x_test, y_test) into {data_dir} and pass data.data_dir=<that folder>."
        ) from error


def check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Shapes, dtypes and label values, checked at load time so that nothing fails mid-training."""
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"{path}: x_{split} must be uint8 (N, 32, 32, 3), got {images.dtype} {images.shape}")
        check_labels(path, f"y_{split}", labels, len(images))
    return arrays


def check_labels(path: Path, key: str, labels: np.ndarray, count: int) -> None:
    last = len(CIFAR10_CLASSES) - 1
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: {key} holds {labels.dtype} values; labels must be integers 0-{last} "
            "(save them with .astype(np.int64) if they are whole numbers)"
        )
    if labels.shape != (count,):
        raise ValueError(f"{path}: {key} has shape {labels.shape}, expected ({count},): one label per image")
    outside = np.flatnonzero((labels < 0) | (labels > last))
    if outside.size:
        index = int(outside[0])
        raise ValueError(
            f"{path}: {key}[{index}] = {labels[index]} is not a CIFAR-10 label 0-{last} "
            f"({outside.size} labels are outside that range)"
        )
