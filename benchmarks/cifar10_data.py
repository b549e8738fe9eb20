"""CIFAR-10 for the speed benchmarks: the real cache read in place, or random images of its shape when
it is absent (speeds stay comparable, and every run records which it used), and the convlens data
module over it with the cifar10 experiment's settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from paths import CIFAR10_CONF

from convlens import provenance


@dataclass(frozen=True)
class Loaded:
    """A dataset for the benchmarks and where it came from (``origin`` says 'synthetic' when it is)."""

    arrays: Any  # convlens.data.DatasetArrays
    origin: str


class Preloaded:
    """A data source (``load()``) over arrays that are already in memory, for ``ImageDataModule``."""

    def __init__(self, arrays: Any) -> None:
        self.arrays = arrays

    def load(self, splits: Any = ()) -> Any:
        """Every split, whichever ``splits`` are asked for (they are all in memory already)."""
        return self.arrays


def load_cifar10(data_dir: Path, synthetic_size: int = 4096) -> Loaded:
    """The real CIFAR-10 cache read in place (never copied), or random uint8 images of its shape."""
    from convlens.data.arrays import ArraySplit, DatasetArrays
    from convlens.data.cifar10 import CIFAR10_CLASSES, CIFAR10Source

    path = data_dir / "cifar10.npz"
    if path.is_file():
        return Loaded(CIFAR10Source(str(data_dir)).load(), f"real: {provenance.portable_path(path)}")
    rng = np.random.default_rng(0)

    def split(size: int) -> ArraySplit:
        images = rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)
        return ArraySplit(images, rng.integers(0, 10, size).astype(np.int64))

    origin = (
        f"synthetic: {provenance.portable_path(path)} not found, {synthetic_size} random 32x32x3 uint8 images "
        "(speeds comparable)"
    )
    print(f"NOTE: {origin}")
    arrays = DatasetArrays(split(synthetic_size), split(256), split(256), CIFAR10_CLASSES)
    return Loaded(arrays, origin)


def cifar10_settings() -> dict[str, Any]:
    """conf/data/cifar10.yaml as plain values (mean, std, augmentation)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CIFAR10_CONF), resolve=False)


def cifar10_datamodule(data: Loaded, image_size: int, batch_size: int, seed: int = 0) -> Any:
    """The convlens data module with the cifar10 experiment's transform settings."""
    from convlens.data import ImageDataModule

    conf = cifar10_settings()
    return ImageDataModule(
        name="cifar10",
        source=Preloaded(data.arrays),
        num_classes=10,
        channels=3,
        image_size=image_size,
        mean=conf["mean"],
        std=conf["std"],
        batch_size=batch_size,
        eval_batch_size=batch_size,
        augment=conf["augment"],
        seed=seed,
    )
