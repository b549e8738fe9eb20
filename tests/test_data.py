"""Data sources on small files made here, the shared data when present, and the data module."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, requires_shared_data
from datafiles import FER_ROWS, fer_row, write_cifar_cache, write_fer_csv, write_fer_folders

from convlens.data import ImageDataModule
from convlens.data.cifar10 import CIFAR10_CLASSES, CIFAR10Source
from convlens.data.fer2013 import FER2013_CLASSES, Fer2013Source
from convlens.data.module import parts_tensor
from convlens.data.synthetic.source import GENERATORS, SyntheticSource


def test_cifar_cache_is_split_with_a_seed(tmp_path: Path) -> None:
    write_cifar_cache(tmp_path)
    arrays = CIFAR10Source(str(tmp_path), val_size=10, split_seed=1).load()
    assert (len(arrays.train), len(arrays.val), len(arrays.test)) == (50, 10, 20)
    assert arrays.class_names == CIFAR10_CLASSES
    again = CIFAR10Source(str(tmp_path), val_size=10, split_seed=1).load()
    assert np.array_equal(arrays.val.images, again.val.images)
    other = CIFAR10Source(str(tmp_path), val_size=10, split_seed=2).load()
    assert not np.array_equal(arrays.val.labels, other.val.labels) or not np.array_equal(
        arrays.val.images, other.val.images
    )


def test_truncated_cifar_cache_says_how_to_fix_it(tmp_path: Path) -> None:
    path = write_cifar_cache(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cifar10.npz is not a readable npz file .*rewrite .* or remove it"):
        CIFAR10Source(str(tmp_path), val_size=10).load()


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.xz"])
def test_fer_csv_maps_usage_to_splits(tmp_path: Path, name: str) -> None:
    write_fer_csv(tmp_path / name, FER_ROWS)
    arrays = Fer2013Source(str(tmp_path), str(tmp_path / "cache")).load()
    assert (len(arrays.train), len(arrays.val), len(arrays.test)) == (3, 1, 2)
    assert arrays.train.images.shape == (3, 48, 48, 1) and arrays.train.images.dtype == np.uint8
    assert arrays.train.labels.tolist() == [3, 0, 6] and arrays.test.labels.tolist() == [1, 2]
    assert arrays.class_names == FER2013_CLASSES
    assert arrays.splits_from.startswith(
        "the csv's Usage column: Training → train, PublicTest → val, PrivateTest → test"
    )
    assert "val_fraction" in arrays.splits_from and "does not apply" in arrays.splits_from
    assert list((tmp_path / "cache").glob("fer2013-*.npz")), "decoded once into an npz cache"


def test_fer_row_with_wrong_pixel_count_names_the_line(tmp_path: Path) -> None:
    write_fer_csv(tmp_path / "fer2013.csv", [*FER_ROWS[:2], fer_row(4, "Training", pixels=2303), *FER_ROWS[2:]])
    with pytest.raises(ValueError, match=r"fer2013.csv line 4: 'pixels' has 2303 values, expected 2304"):
        Fer2013Source(str(tmp_path), str(tmp_path / "cache")).load()


def test_fer_image_folders(tmp_path: Path) -> None:
    write_fer_folders(tmp_path, {"train": 10, "test": 3})
    arrays = Fer2013Source(str(tmp_path), str(tmp_path / "cache"), val_fraction=0.25).load()
    assert (len(arrays.train), len(arrays.val), len(arrays.test)) == (15, 5, 6)
    assert arrays.splits_from == ("train and val: the train/ folder, 5 of its images held out for val (val_fraction "
                                  "0.25, seed 0); test: the test/ folder")  # fmt: skip
    assert set(arrays.test.labels.tolist()) == {FER2013_CLASSES.index("Happy"), FER2013_CLASSES.index("Sad")}


def test_fer_faces_carry_the_fixed_part_boxes_as_writable_tensors(tmp_path: Path) -> None:
    """Every FER2013 image gets the same part map (brows above eyes above mouth), shared, not copied per image."""
    write_fer_folders(tmp_path, {"train": 4, "test": 2})
    arrays = Fer2013Source(str(tmp_path), str(tmp_path / "cache"), val_fraction=0.25).load()
    assert arrays.part_names == ("background", "rest of face", "brows", "eyes", "mouth")
    assert "approximate" in arrays.parts_from
    parts = arrays.train.parts
    assert parts.shape == (len(arrays.train), 48, 48) and parts.strides[0] == 0
    rows = {name: np.flatnonzero((parts[0] == index).any(axis=1)) for index, name in enumerate(arrays.part_names)}
    assert rows["brows"].max() < rows["eyes"].min() and rows["eyes"].max() < rows["mouth"].min()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a read-only array would warn when it becomes a tensor
        tensor = parts_tensor(parts)
    assert tensor.shape == parts.shape and torch.equal(tensor[1], torch.from_numpy(np.array(parts[1])))


def test_missing_fer_data_dir_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"data.data_dir=.*nowhere does not exist.*cannot be downloaded automatically"
    ):
        Fer2013Source(str(tmp_path / "nowhere"), str(tmp_path / "cache")).load()


def test_empty_fer_data_dir_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no fer2013.csv, fer2013.csv.xz or train/ \+ test/ folders"):
        Fer2013Source(str(tmp_path), str(tmp_path / "cache")).load()


def cifar_module(data_dir: Path, **overrides) -> ImageDataModule:
    settings = dict(
        name="cifar10", source=CIFAR10Source(str(data_dir), val_size=10), num_classes=10, channels=3,
        image_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), batch_size=16, eval_batch_size=32,
        augment={"crop_padding": 4, "hflip": True},
    )  # fmt: skip
    return ImageDataModule(**(settings | overrides))


def test_data_module_batches_and_transforms(tmp_path: Path) -> None:
    write_cifar_cache(tmp_path)
    module = cifar_module(tmp_path)
    module.setup("fit")
    batches = list(module.train_dataloader())
    assert len(batches) == len(module.train_dataloader()) == 50 // 16  # ragged last batch dropped
    images, labels = batches[0]
    assert images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32) and labels.shape == (16,)
    x = module.preprocess(images)
    assert x.shape == (16, 3, 64, 64) and x.dtype == torch.float32
    assert torch.allclose(module.to_display(x), module.transform.to_display(x))
    assert module.to_display(x).min() >= 0.0 and module.to_display(x).max() <= 1.0
    evaluation = list(module.val_dataloader())
    assert sum(len(labels) for _, labels in evaluation) == 10  # evaluation keeps every image


def test_a_synthetic_split_is_drawn_alone_and_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage that reads the test split does not draw the training images, and the test split drawn
    alone is the one drawn with the others (each split has its own seed)."""
    source = SyntheticSource("faces", train_size=40, val_size=20, test_size=30, seed=3)
    whole = source.load()
    drawn: list[int] = []
    make = GENERATORS["faces"][0]
    monkeypatch.setitem(
        GENERATORS, "faces", (lambda n, seed: drawn.append(n) or make(n, seed), *GENERATORS["faces"][1:])
    )
    module = ImageDataModule("faces", source, num_classes=7, channels=1, image_size=48, mean=[0.5], std=[0.25],
                             batch_size=8, eval_batch_size=8)  # fmt: skip
    module.prepare(())
    assert drawn == [] and module.class_names == list(whole.class_names)
    test = module.split("test")
    assert drawn == [30]
    assert np.array_equal(test.images.numpy(), whole.test.images.transpose(0, 3, 1, 2))
    assert np.array_equal(test.parts.numpy(), whole.test.parts)


def test_shuffling_depends_on_seed_and_epoch(tmp_path: Path) -> None:
    write_cifar_cache(tmp_path)
    module = cifar_module(tmp_path, seed=3)
    module.setup("fit")
    loader = module.train_dataloader()
    first = [labels.tolist() for _, labels in loader]
    assert first == [labels.tolist() for _, labels in loader]
    loader.sampler.set_epoch(1)
    assert first != [labels.tolist() for _, labels in loader]


@requires_shared_data("cifar10.npz")
def test_real_cifar10_counts() -> None:
    arrays = CIFAR10Source(str(SHARED_DATA)).load()
    assert (len(arrays.train) + len(arrays.val), len(arrays.val), len(arrays.test)) == (50_000, 5_000, 10_000)
    assert np.bincount(arrays.test.labels).tolist() == [1000] * 10


@requires_shared_data("fer2013.csv.xz")
def test_real_fer2013_counts(tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = Path(__file__).parents[1] / "data" / "cache"  # the project's cache: parsed once, reused
    arrays = Fer2013Source(str(SHARED_DATA), str(cache)).load()
    assert (len(arrays.train), len(arrays.val), len(arrays.test)) == (28_709, 3_589, 3_589)
    assert np.bincount(arrays.train.labels).tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
