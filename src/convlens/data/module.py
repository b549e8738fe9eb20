"""One LightningDataModule for every dataset: uint8 tensors in memory, batches by fancy indexing,
augmentation/resize/normalization batched on the training device."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from convlens.data.arrays import SPLITS, ArraySplit, DatasetArrays
from convlens.data.transforms import TTA_VIEWS, AugmentSettings, BatchTransform


class DatasetSource(Protocol):
    def load(self, splits: Collection[str] = SPLITS) -> DatasetArrays:
        """At least the ``splits`` asked for (a source that reads one file may return them all)."""
        ...


@dataclass(frozen=True)
class ImageSplit:
    """A split as tensors: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,), ``masks`` bool (N, H, W),
    ``parts`` uint8 (N, H, W) (see :class:`~convlens.data.arrays.ArraySplit`)."""

    images: Tensor
    labels: Tensor
    masks: Tensor | None
    parts: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> ImageSplit:
        return ImageSplit(self.images.to(device), self.labels.to(device), self.masks, self.parts)


def parts_tensor(parts: np.ndarray | None) -> Tensor | None:
    """The parts as a tensor; one map broadcast to every image (fixed boxes) stays a single map."""
    if parts is None:
        return None
    if parts.strides[0] == 0:
        return torch.from_numpy(np.array(parts[0])).expand(parts.shape)  # a writable copy of the one map
    return torch.from_numpy(parts)


class _IndexedBatches(Dataset):
    """``dataset[indices]`` returns a whole batch in one indexing op: no per-image Python, no collate."""

    def __init__(self, split: ImageSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        indices = indices.to(self.split.images.device, non_blocking=True)
        return self.split.images[indices], self.split.labels[indices]


class _BatchIndices(Sampler[Tensor]):
    """Yields index tensors per batch; shuffles with ``seed + epoch`` and shards over ranks."""

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0, world: int = 1) -> None:
        self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)[self.rank :: self.world]
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        per_rank = self.size // self.world  # equal shards, so every rank runs the same number of steps
        return torch.randperm(self.size, generator=generator)[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __iter__(self) -> Iterator[Tensor]:
        indices = self._indices()
        # Training drops the ragged last batch (BatchNorm dislikes a batch of 1); evaluation keeps it.
        stop = len(indices) - len(indices) % self.batch_size if self.shuffle else len(indices)
        yield from indices[:stop].split(self.batch_size) if stop else ()

    def __len__(self) -> int:
        count = self.size // self.world if self.shuffle else len(range(self.rank, self.size, self.world))
        return count // self.batch_size if self.shuffle else -(-count // self.batch_size)


class ImageDataModule(pl.LightningDataModule):
    """Loads a ``source`` once, keeps its uint8 images as tensors (on the training device when
    ``on_device``) and turns batches into model input in :meth:`on_after_batch_transfer`."""

    def __init__(
        self,
        name: str,
        source: DatasetSource,
        num_classes: int,
        channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int = 128,
        eval_batch_size: int = 256,
        augment: dict[str, Any] | None = None,
        test_time_augmentation: str = "none",
        on_device: bool = True,
        seed: int = 0,
        data_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.data_dir = data_dir
        self.source = source
        self.num_classes = num_classes
        self.channels = channels
        self.image_size = image_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.test_time_augmentation = test_time_augmentation
        self.on_device = on_device
        self.seed = seed
        augment_settings = AugmentSettings(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in (augment or {}).items()}
        )
        self.transform = BatchTransform(image_size, tuple(mean), tuple(std), augment_settings)
        self.class_names: list[str] = []
        self.part_names: tuple[str, ...] = ()
        self.parts_from = self.splits_from = ""
        self.files: tuple = ()
        self.splits: dict[str, ImageSplit] = {}

    def prepare(self, splits: Collection[str] = SPLITS) -> None:
        """Load the source's class names and ``splits``, each once (a split asked for later through
        :meth:`split` loads then): a stage that reads only the test split of a synthetic dataset does
        not draw its training images."""
        wanted = [name for name in splits if name not in self.splits]
        if self.class_names and not wanted:
            return
        arrays = self.source.load(wanted)
        self._check_classes(arrays)
        self.class_names = list(arrays.class_names)
        self.part_names, self.parts_from, self.splits_from = arrays.part_names, arrays.parts_from, arrays.splits_from
        self.files = arrays.files
        for name in SPLITS:
            found = arrays.split(name)
            if found is not None and name not in self.splits:
                self.splits[name] = self._tensors(found)

    def setup(self, stage: str | None = None) -> None:
        self.prepare()
        device = self._device()
        self.splits = {name: split.to(device) for name, split in self.splits.items()}

    def _device(self) -> torch.device:
        if self.on_device and self.trainer is not None:
            return self.trainer.strategy.root_device
        return torch.device("cpu")

    def _check_classes(self, arrays: DatasetArrays) -> None:
        if len(arrays.class_names) != self.num_classes:
            found = len(arrays.class_names)
            raise ValueError(f"data '{self.name}': source has {found} classes but data.num_classes={self.num_classes}")

    def _tensors(self, split: ArraySplit) -> ImageSplit:
        channels = split.images.shape[-1]
        if channels != self.channels:
            raise ValueError(f"data '{self.name}': images have {channels} channels but data.channels={self.channels}")
        images = torch.from_numpy(np.ascontiguousarray(split.images.transpose(0, 3, 1, 2)))
        masks = None if split.masks is None else torch.from_numpy(split.masks)
        return ImageSplit(images, torch.from_numpy(split.labels), masks, parts_tensor(split.parts))

    def split(self, name: str) -> ImageSplit:
        if name not in SPLITS:
            raise ValueError(f"unknown split '{name}'; valid splits: {sorted(SPLITS)}")
        if name not in self.splits:
            self.prepare((name,))
        return self.splits[name]

    def _loader(self, name: str, batch_size: int, shuffle: bool) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        sampler = _BatchIndices(len(self.split(name)), batch_size, shuffle, self.seed, rank, world)
        return DataLoader(_IndexedBatches(self.split(name)), sampler=sampler, batch_size=None, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """``eval_batch_size`` counts model inputs: with test-time augmentation, each image is several
        (ten crops: 512 images would be 5,120 inputs per forward pass and gigabytes of activations)."""
        return self._loader("test", self.test_batch_size, shuffle=False)

    @property
    def test_batch_size(self) -> int:
        """Test images per batch, so that their test-time-augmented views number at most ``eval_batch_size``."""
        return max(1, self.eval_batch_size // TTA_VIEWS[self.test_time_augmentation])

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        images, labels = batch
        trainer = self.trainer
        if trainer is not None and trainer.testing and self.test_time_augmentation != "none":
            return self.transform.views(images, self.test_time_augmentation), labels
        return self.transform(images, train=trainer is not None and trainer.training), labels

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 images -> model input without augmentation (for evaluation and the explain stage)."""
        return self.transform(images, train=False)

    def to_display(self, x: Tensor) -> Tensor:
        return self.transform.to_display(x)

    def describe(self) -> dict[str, Any]:
        """Sizes and settings for metrics.json and the report."""
        return {
            "name": self.name,
            "sizes": {name: len(split) for name, split in self.splits.items()},
            "train_class_counts": (  # how rare each class is in training: the report sets it beside what it confuses
                torch.bincount(self.splits["train"].labels.cpu(), minlength=self.num_classes).tolist()
                if "train" in self.splits
                else None
            ),
            "splits_from": self.splits_from,
            "native_size": list(self.splits["train"].images.shape[-2:]) if self.splits else None,
            "image_size": self.image_size,
            "channels": self.channels,
            "augment": vars(self.transform.augment) | {"erase_scale": list(self.transform.augment.erase_scale)},
        }
