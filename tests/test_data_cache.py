"""Caches follow their source's content (never a stale decode), and CIFAR-10's official layout works
offline and read-only: every test builds its own tiny files."""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from datafiles import FER_ROWS, fer_row, write_cifar_batches, write_fer_csv, write_fer_folders
from torchvision.datasets import CIFAR10

from convlens.data.cifar10 import CIFAR10Source
from convlens.data.fer2013 import FER2013_CLASSES, Fer2013Source

HAPPY, SAD = FER2013_CLASSES.index("Happy"), FER2013_CLASSES.index("Sad")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may download CIFAR-10: torchvision's download raises as it would without a network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise URLError("no network in the tests")

    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", refuse)
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", refuse)
    monkeypatch.setattr("convlens.data.cifar10.download_and_extract_archive", refuse, raising=False)


@pytest.fixture
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user cache directory (``$XDG_CACHE_HOME/convlens``) moved into tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "convlens"


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make a folder read-only as a read-only mount would, for root too (root ignores mode bits):
    opening a file below it for writing raises PermissionError."""
    folders: list[Path] = []
    real_open = io.open

    def guarded_open(file, mode="r", *args, **kwargs):
        writing = any(flag in mode for flag in "wax+")
        if (
            writing
            and isinstance(file, str | os.PathLike)
            and any(Path(file).resolve().is_relative_to(f) for f in folders)
        ):
            raise PermissionError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(builtins, "open", guarded_open)

    def make(folder: Path) -> None:
        folder.chmod(0o555)
        folders.append(folder.resolve())

    yield make
    for folder in folders:
        folder.chmod(0o755)


# ----------------------------------------------------------------------------- item 5: FER2013


def test_fer_csv_cache_follows_content_not_size(tmp_path: Path) -> None:
    """A same-size csv with other labels is decoded again, not answered from the old cache."""
    write_fer_csv(tmp_path / "fer2013.csv", FER_ROWS)
    first = Fer2013Source(str(tmp_path), str(tmp_path / "cache")).load()
    size = (tmp_path / "fer2013.csv").stat().st_size
    write_fer_csv(tmp_path / "fer2013.csv", [fer_row(4, "Training"), *FER_ROWS[1:]])  # Happy -> Sad, same size
    assert (tmp_path / "fer2013.csv").stat().st_size == size
    second = Fer2013Source(str(tmp_path), str(tmp_path / "cache")).load()
    assert first.train.labels.tolist() == [3, 0, 6] and second.train.labels.tolist() == [4, 0, 6]


def test_fer_folder_cache_follows_images_moved_between_classes(tmp_path: Path) -> None:
    data, cache = write_fer_folders(tmp_path / "data", {"train": 4, "test": 2}), str(tmp_path / "cache")
    before = Fer2013Source(str(data), cache).load()
    (data / "test" / "happy" / "0.png").rename(data / "test" / "sad" / "moved.png")
    after = Fer2013Source(str(data), cache).load()
    assert sorted(before.test.labels.tolist()) == [HAPPY, HAPPY, SAD, SAD]
    assert sorted(after.test.labels.tolist()) == [HAPPY, SAD, SAD, SAD]


def test_fer_folder_validation_split_follows_its_settings(tmp_path: Path) -> None:
    """val_fraction and split_seed apply to the cached images, not to a split frozen in the cache."""
    data, cache = write_fer_folders(tmp_path / "data", {"train": 10, "test": 2}), str(tmp_path / "cache")
    quarter = Fer2013Source(str(data), cache, val_fraction=0.25).load()
    half = Fer2013Source(str(data), cache, val_fraction=0.5).load()
    assert (len(quarter.train), len(quarter.val)) == (15, 5) and (len(half.train), len(half.val)) == (10, 10)
    other_seed = Fer2013Source(str(data), cache, val_fraction=0.5, split_seed=1).load()
    assert not np.array_equal(half.val.images, other_seed.val.images)


def test_fer_in_a_read_only_data_dir_caches_in_the_user_cache(tmp_path: Path, user_cache: Path, read_only) -> None:
    (tmp_path / "data").mkdir()
    write_fer_csv(tmp_path / "data" / "fer2013.csv", FER_ROWS)
    read_only(tmp_path / "data")
    arrays = Fer2013Source(str(tmp_path / "data")).load()
    assert arrays.train.labels.tolist() == [3, 0, 6] and len(list(user_cache.glob("fer2013-*.npz"))) == 1


# ------------------------------------------------------------- item 10: CIFAR-10's official layout


def test_official_batches_in_a_read_only_data_dir_work_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None, user_cache: Path, read_only
) -> None:
    data_dir = tmp_path / "data"
    expected = write_cifar_batches(data_dir, monkeypatch)
    read_only(data_dir)
    arrays = CIFAR10Source(str(data_dir), val_size=6).load()
    assert (len(arrays.train), len(arrays.val), len(arrays.test)) == (54, 6, 12)
    np.testing.assert_array_equal(arrays.test.images, expected["x_test"])
    np.testing.assert_array_equal(arrays.test.labels, expected["y_test"])
    train = np.concatenate([arrays.train.labels, arrays.val.labels])
    assert sorted(train.tolist()) == sorted(expected["y_train"].tolist())
    assert [path.name for path in arrays.files] == [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    assert [p.name for p in user_cache.glob("cifar10-*.npz")], "the cache went to the user cache directory"
    again = CIFAR10Source(str(data_dir), val_size=6).load()
    np.testing.assert_array_equal(again.val.images, arrays.val.images)


def test_official_batches_are_decoded_like_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = write_cifar_batches(tmp_path, monkeypatch)
    reference = CIFAR10(str(tmp_path), train=True)
    assert np.array_equal(reference.data, expected["x_train"]) and reference.targets == expected["y_train"].tolist()
    arrays = CIFAR10Source(str(tmp_path), val_size=6, split_seed=0).load()
    order = np.random.default_rng(0).permutation(60)
    keep, held_out = np.sort(order[6:]), np.sort(order[:6])
    np.testing.assert_array_equal(arrays.train.images, expected["x_train"][keep])
    np.testing.assert_array_equal(arrays.val.labels, expected["y_train"][held_out])


def test_cache_dir_option_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_cache: Path) -> None:
    write_cifar_batches(tmp_path / "data", monkeypatch)
    CIFAR10Source(str(tmp_path / "data"), val_size=6, cache_dir=str(tmp_path / "chosen")).load()
    assert len(list((tmp_path / "chosen").glob("cifar10-*.npz"))) == 1
    assert not list((tmp_path / "data").glob("*.npz")), "an explicit cache_dir keeps the data dir untouched"
    CIFAR10Source(str(tmp_path / "data"), val_size=6).load()
    assert len(list((tmp_path / "data").glob("cifar10-*.npz"))) == 1, "default: the data dir when writable"
    assert not user_cache.exists()


def test_unwritable_chosen_cache_dir_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only) -> None:
    write_cifar_batches(tmp_path / "data", monkeypatch)
    (tmp_path / "locked").mkdir()
    read_only(tmp_path / "locked")
    with pytest.raises(PermissionError, match=r"cannot write the cache .*locked.*data.source.cache_dir="):
        CIFAR10Source(str(tmp_path / "data"), val_size=6, cache_dir=str(tmp_path / "locked")).load()


def test_one_corrupted_byte_names_the_batch_and_the_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    write_cifar_batches(tmp_path, monkeypatch)
    damaged = tmp_path / CIFAR10.base_folder / "data_batch_3"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"data_batch_3: md5 checksum failed") as error:
        CIFAR10Source(str(tmp_path), val_size=6).load()
    assert "is not in" not in str(error.value)


def test_missing_batch_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None) -> None:
    write_cifar_batches(tmp_path, monkeypatch)
    (tmp_path / CIFAR10.base_folder / "test_batch").unlink()
    with pytest.raises(ValueError, match=r"test_batch is missing"):
        CIFAR10Source(str(tmp_path), val_size=6).load()


def test_no_cifar_and_no_network_says_how_to_get_it(tmp_path: Path, offline: None) -> None:
    with pytest.raises(RuntimeError, match=r"CIFAR-10 is not in .* could not be downloaded .*no network"):
        CIFAR10Source(str(tmp_path / "empty"), val_size=6).load()
