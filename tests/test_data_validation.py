"""Bad data files are refused at load time with an error that names the file (and line or key), and
unusual but valid ones (16-bit PNGs, a UTF-8 BOM) are read correctly: every test builds its own files."""

from __future__ import annotations

import codecs
import lzma
from pathlib import Path

import numpy as np
import pytest
from datafiles import FER_ROWS, fer_row, write_cifar_cache, write_fer_csv, write_fer_folders
from PIL import Image

from convlens.data.cifar10 import CIFAR10Source
from convlens.data.fer2013 import Fer2013Source


def load_fer(data_dir: Path, tmp_path: Path):
    return Fer2013Source(str(data_dir), str(tmp_path / "cache")).load()


def test_16_bit_png_keeps_its_gray_levels(tmp_path: Path) -> None:
    data = write_fer_folders(tmp_path / "data", {"train": 2, "test": 1})
    levels = np.arange(48 * 48, dtype=np.uint32).reshape(48, 48) % 256
    wide = Image.fromarray((levels * 257).astype(np.uint16))  # 16-bit gray: 0..65535
    assert wide.mode.startswith("I;16")
    wide.save(data / "test" / "happy" / "wide.png")
    assert Image.open(data / "test" / "happy" / "wide.png").mode.startswith("I")
    arrays = load_fer(data, tmp_path)
    decoded = [image[..., 0] for image in arrays.test.images if image.std() > 0]
    assert len(decoded) == 1
    np.testing.assert_array_equal(decoded[0], levels.astype(np.uint8))


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.xz"])
def test_fer_csv_with_a_utf8_bom_is_read(tmp_path: Path, name: str) -> None:
    """Excel saves csv files as UTF-8 with a byte-order mark before the header."""
    path = write_fer_csv(tmp_path / name, FER_ROWS, "utf-8-sig")
    raw = lzma.decompress(path.read_bytes()) if name.endswith(".xz") else path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8 + b"emotion")
    arrays = load_fer(tmp_path, tmp_path)
    assert arrays.train.labels.tolist() == [3, 0, 6]


def test_non_numeric_pixel_names_the_line(tmp_path: Path) -> None:
    bad = fer_row(4, "Training").replace(" 7 ", " 7x ", 1)
    write_fer_csv(tmp_path / "fer2013.csv", [FER_ROWS[0], bad, *FER_ROWS[1:]])
    with pytest.raises(ValueError, match=r"fer2013.csv line 3: 'pixels' must hold whole numbers 0-255 .*'7x'"):
        load_fer(tmp_path, tmp_path)


def test_damaged_xz_names_the_file(tmp_path: Path) -> None:
    path = write_fer_csv(tmp_path / "fer2013.csv.xz", FER_ROWS)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"fer2013.csv.xz cannot be read .*download it again"):
        load_fer(tmp_path, tmp_path)


def test_csv_in_another_encoding_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_bytes(("émotion,pixels,Usage\n" + FER_ROWS[0]).encode("latin-1"))
    with pytest.raises(ValueError, match=r"fer2013.csv cannot be read .*UTF-8"):
        load_fer(tmp_path, tmp_path)


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    data = write_fer_folders(tmp_path / "data", {"train": 2, "test": 1})
    png = data / "train" / "sad" / "1.png"
    png.write_bytes(png.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"train/sad/1.png cannot be decoded as an image"):
        load_fer(data, tmp_path)


def write_cifar(tmp_path: Path, **replace: np.ndarray) -> Path:
    path = write_cifar_cache(tmp_path)
    with np.load(path) as npz:
        arrays = dict(npz)
    np.savez(path, **(arrays | replace))
    return path


@pytest.mark.parametrize("bad", [10, -1])
def test_cifar_label_out_of_range_names_the_file_and_key(tmp_path: Path, bad: int) -> None:
    labels = np.zeros(20, np.int64)
    labels[7] = bad
    write_cifar(tmp_path, y_test=labels)
    with pytest.raises(ValueError, match=rf"cifar10.npz: y_test\[7\] = {bad} is not a CIFAR-10 label 0-9"):
        CIFAR10Source(str(tmp_path), val_size=10).load()


def test_cifar_float_labels_are_refused_not_truncated(tmp_path: Path) -> None:
    write_cifar(tmp_path, y_train=np.full(60, 2.7))
    with pytest.raises(ValueError, match=r"cifar10.npz: y_train holds float64 values; labels must be integers 0-9"):
        CIFAR10Source(str(tmp_path), val_size=10).load()


def test_object_array_npz_names_the_file_and_key(tmp_path: Path) -> None:
    write_cifar(tmp_path, y_train=np.array([1, "cat"] * 30, dtype=object))
    with pytest.raises(ValueError, match=r"cifar10.npz: y_train is an object array.*not loaded"):
        CIFAR10Source(str(tmp_path), val_size=10).load()
