"""FER2013 from Kaggle's ``fer2013.csv`` (plain or ``.csv.xz``) or its image-folder layout.

Decoded once into an npz cache named after the source's content (the csv's sha256, or a manifest of
the image folders' paths, sizes and modification times), so later runs start in a second, a changed
source is decoded again, and a read-only ``data_dir`` works.
"""

from __future__ import annotations

import csv
import io
import lzma
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convlens.data.arrays import SPLITS, ArraySplit, DatasetArrays, seeded_holdout
from convlens.data.cache import cache_folders, cached_arrays, folder_digest
from convlens.provenance import sha256

FER2013_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
#: FER2013's faces are automatic crops, roughly centred and about the same size but not aligned to landmarks (tilted
#: heads occur), so fixed boxes only approximate the parts:
#: (rows, columns) of each 48x48 image, placed on the training set's mean face (brows about rows 11-14,
#: eyes 16-21, mouth 33-40). Later boxes overwrite earlier ones; pixels in none are background.
FER2013_BOXES: dict[str, tuple[slice, slice]] = {
    "rest of face": (slice(6, 46), slice(5, 43)),  # the face box less the boxes below, which overwrite it
    "brows": (slice(10, 15), slice(6, 42)),
    "eyes": (slice(15, 23), slice(6, 42)),
    "mouth": (slice(31, 42), slice(12, 36)),
}
FER2013_PARTS = ("background", *FER2013_BOXES)
PARTS_FROM = "fixed boxes on the 48x48 face crops (roughly centred, not aligned to landmarks): approximate per image"
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
#: Where the csv's splits come from, as the report's Setup says it (``val_fraction`` does not apply).
CSV_SPLITS = (
    "the csv's Usage column: Training → train, PublicTest → val, PrivateTest → test (val_fraction, which splits "
    "the folder form's train/, does not apply)"
)
PIXELS = 48 * 48
#: The arrays cached per split.
KINDS = ("images", "labels")
#: Part of every cache name: bump it when decoding changes, so that caches decoded before are not reused.
CACHE_FORMAT = 2
#: The most text a FER2013 csv may hold: twice Kaggle's fer2013.csv (287 MiB), checked while it is read,
#: so that a small ``.xz`` that decompresses to gigabytes (a decompression bomb) is refused early.
MAX_CSV_BYTES = 2 * 287 * 2**20
#: Pillow's modes for 16-bit (and 32-bit integer) gray images, which ``convert("L")`` would clip to white.
WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
WHERE_TO_GET = (
    "FER2013 cannot be downloaded automatically (Kaggle requires a login). Download fer2013.csv from "
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data "
    "(or the image-folder version train/<class>/*.jpg, test/<class>/*.jpg from "
    "https://www.kaggle.com/datasets/msambare/fer2013) and put it into {data_dir}, "
    "or pass data.data_dir=<folder that holds it>."
)


class Fer2013Source:
    """Training -> train, PublicTest -> val, PrivateTest -> test for the csv; for image folders the
    val split is a seeded ``val_fraction`` of train/, drawn after the cache (so it follows both
    settings). ``cache_dir`` defaults to ``data_dir`` when writable, else the user cache folder."""

    def __init__(
        self, data_dir: str, cache_dir: str | None = None, val_fraction: float = 0.1, split_seed: int = 0
    ) -> None:
        self.data_dir = Path(data_dir)
        self.cache_dir = cache_dir
        self.val_fraction = val_fraction
        self.split_seed = split_seed

    def load(self, splits: Collection[str] = SPLITS) -> DatasetArrays:
        """Every split (one file holds them all), whichever ``splits`` are asked for."""
        source = find_source(self.data_dir)
        if source.is_file():
            splits = self._cached(sha256(source), tuple(USAGE_TO_SPLIT.values()), lambda: read_csv(source))
            return with_parts(splits["train"], splits["val"], splits["test"], (source,), CSV_SPLITS)
        files = [path for split in ("train", "test") for path in (source / split).rglob("*") if path.is_file()]
        splits = self._cached(folder_digest(source, files), ("train", "test"), lambda: read_folders(source))
        train = splits["train"]
        keep, held_out = seeded_holdout(len(train), max(1, round(len(train) * self.val_fraction)), self.split_seed)
        origin = (f"train and val: the train/ folder, {len(held_out):,} of its images held out for val (val_fraction "
                  f"{self.val_fraction:g}, seed {self.split_seed}); test: the test/ folder")  # fmt: skip
        return with_parts(train.subset(keep), train.subset(held_out), splits["test"], splits_from=origin)

    def _cached(
        self, digest: str, names: tuple[str, ...], decode: Callable[[], dict[str, ArraySplit]]
    ) -> dict[str, ArraySplit]:
        """The ``names`` splits from the cache named after ``digest``, decoding and caching them first if needed."""

        def flat() -> dict[str, np.ndarray]:
            return {f"{kind}_{name}": getattr(split, kind) for name, split in decode().items() for kind in KINDS}

        keys = tuple(f"{kind}_{name}" for name in names for kind in KINDS)
        folders = cache_folders(self.cache_dir, self.data_dir)
        arrays, _ = cached_arrays(f"fer2013-v{CACHE_FORMAT}-{digest[:16]}.npz", folders, keys, flat)
        return {name: ArraySplit(arrays[f"images_{name}"], arrays[f"labels_{name}"]) for name in names}


def with_parts(
    train: ArraySplit, val: ArraySplit, test: ArraySplit, files: tuple[Path, ...] = (), splits_from: str = ""
) -> DatasetArrays:
    """The dataset with every image's parts: the same :data:`FER2013_BOXES` map, broadcast (no copy)."""
    parts = np.zeros((48, 48), dtype=np.uint8)
    for index, (rows, columns) in enumerate(FER2013_BOXES.values(), 1):
        parts[rows, columns] = index
    splits = [ArraySplit(split.images, split.labels, split.masks, np.broadcast_to(parts, (len(split), 48, 48)))
              for split in (train, val, test)]  # fmt: skip
    return DatasetArrays(
        *splits, FER2013_CLASSES, files, part_names=FER2013_PARTS, parts_from=PARTS_FROM, splits_from=splits_from
    )


def find_source(data_dir: Path) -> Path:
    """The csv (plain first, then xz) or the folder holding train/ and test/."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data.data_dir={data_dir} does not exist. " + WHERE_TO_GET.format(data_dir=data_dir))
    for name in ("fer2013.csv", "fer2013.csv.xz"):
        if (data_dir / name).is_file():
            return data_dir / name
    if (data_dir / "train").is_dir() and (data_dir / "test").is_dir():
        return data_dir
    raise FileNotFoundError(
        f"no fer2013.csv, fer2013.csv.xz or train/ + test/ folders in {data_dir}. "
        + WHERE_TO_GET.format(data_dir=data_dir)
    )


def read_csv(path: Path) -> dict[str, ArraySplit]:
    """Parse Kaggle's ``emotion,pixels,Usage`` csv (a UTF-8 byte-order mark, as Excel writes, is
    skipped); a bad row is reported with its line number, an unreadable file with its name."""
    try:
        return _read_rows(path)
    except (UnicodeDecodeError, lzma.LZMAError, EOFError) as error:
        raise ValueError(
            f"{path} cannot be read ({error}): it must be a UTF-8 text csv (optionally xz-compressed) and "
            "complete; save it again as UTF-8 csv or download it again"
        ) from error


def _read_rows(path: Path) -> dict[str, ArraySplit]:
    images: dict[str, list[np.ndarray]] = {name: [] for name in USAGE_TO_SPLIT.values()}
    labels: dict[str, list[int]] = {name: [] for name in USAGE_TO_SPLIT.values()}
    with _open_text(path) as handle:
        rows = _csv_rows(path, csv.reader(handle))
        _, header = next(rows, (1, None))
        if header is None or [column.strip() for column in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise ValueError(f"{path}: line 1 must be the header 'emotion,pixels,Usage', got {header}")
        for line, row in rows:
            split, label, pixels = _parse_row(f"{path} line {line}", row)
            images[split].append(pixels)
            labels[split].append(label)
    for name, split_images in images.items():
        if not split_images:
            raise ValueError(f"{path} has no rows for the {name} split; expected Usage values {list(USAGE_TO_SPLIT)}")
    return {
        name: ArraySplit(np.stack(images[name]).reshape(-1, 48, 48, 1), np.asarray(labels[name], np.int64))
        for name in images
    }


@contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOWrapper]:
    """The csv as UTF-8 text (a byte-order mark skipped), decompressed from xz as it is read, and refused once
    it passes :data:`MAX_CSV_BYTES`: a decompressed size is only known when it has been decompressed."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rb") as raw:
        capped = io.BufferedReader(CappedReader(raw, MAX_CSV_BYTES, path))
        with io.TextIOWrapper(capped, "utf-8-sig", newline="") as text:
            yield text


def _csv_rows(path: Path, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each csv row; a line the csv module cannot split (such as a field beyond
    its size limit, a row of 200,000 values) is refused naming the file and the line."""
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as error:
        raise ValueError(
            f"{path} line {reader.line_num}: not a row of emotion,pixels,Usage ({error}); "
            f"a FER2013 row holds {PIXELS} pixel values; the file is damaged, download it again"
        ) from error


class CappedReader(io.RawIOBase):
    """A binary stream that refuses to deliver more than ``limit`` bytes of ``stream``, naming ``path``."""

    def __init__(self, stream: io.IOBase, limit: int, path: Path) -> None:
        super().__init__()
        self.stream, self.limit, self.path, self.delivered = stream, limit, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.stream.readinto(buffer)
        self.delivered += count
        if self.delivered > self.limit:
            raise ValueError(
                f"{self.path} holds more than {self.limit:,} bytes of text (MAX_CSV_BYTES, twice Kaggle's "
                "fer2013.csv): it is not FER2013's csv (a decompression bomb?); download fer2013.csv again"
            )
        return count


def _parse_row(where: str, row: list[str]) -> tuple[str, int, np.ndarray]:
    if len(row) != 3:
        raise ValueError(f"{where}: expected 3 fields emotion,pixels,Usage, got {len(row)}")
    emotion, pixel_text, usage = row
    if usage not in USAGE_TO_SPLIT:
        raise ValueError(f"{where}: Usage '{usage}' is not one of {list(USAGE_TO_SPLIT)}")
    if not emotion.isdigit() or int(emotion) >= len(FER2013_CLASSES):
        raise ValueError(f"{where}: emotion '{emotion}' is not a label 0-{len(FER2013_CLASSES) - 1}")
    try:
        pixels = np.loadtxt(io.StringIO(pixel_text), dtype=np.int64, ndmin=1) if pixel_text.strip() else np.empty(0)
    except ValueError as error:
        raise ValueError(f"{where}: 'pixels' must hold whole numbers 0-255 separated by spaces ({error})") from error
    if pixels.size != PIXELS:
        raise ValueError(f"{where}: 'pixels' has {pixels.size} values, expected {PIXELS} (48x48); the row is damaged")
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{where}: 'pixels' values must lie in 0-255")
    return USAGE_TO_SPLIT[usage], int(emotion), pixels.astype(np.uint8)


def read_folders(root: Path) -> dict[str, ArraySplit]:
    return {"train": read_image_folder(root / "train"), "test": read_image_folder(root / "test")}


def read_image_folder(root: Path) -> ArraySplit:
    """``root/<class>/*.{jpg,png}`` with class folders named like FER2013's classes (any case)."""
    by_name = {name.lower(): index for index, name in enumerate(FER2013_CLASSES)}
    images, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.lower() not in by_name:
            raise ValueError(f"{folder}: folder name is not a FER2013 class; expected one of {list(FER2013_CLASSES)}")
        for file in sorted(folder.glob("*")):
            if file.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            pixels = read_gray(file)
            if pixels.shape != (48, 48):
                raise ValueError(f"{file}: expected a 48x48 image, got {pixels.shape[1]}x{pixels.shape[0]}")
            images.append(pixels)
            labels.append(by_name[folder.name.lower()])
    if not images:
        raise FileNotFoundError(f"no images under {root}/<class>/; " + WHERE_TO_GET.format(data_dir=root.parent))
    return ArraySplit(np.stack(images)[..., None], np.asarray(labels, np.int64))


def read_gray(file: Path) -> np.ndarray:
    """An image as 8-bit gray; 16-bit gray is scaled (65535 -> 255), where ``convert("L")`` clips to white."""
    try:
        with Image.open(file) as image:
            wide = image.mode in WIDE_GRAY_MODES
            pixels = np.asarray(image) if wide else np.asarray(image.convert("L"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{file} cannot be decoded as an image ({error}); replace or delete the file") from error
    if not wide:
        return pixels
    if pixels.min() < 0 or pixels.max() > 65535:
        raise ValueError(f"{file}: a {image.mode} image with values outside 0-65535; save it as 8-bit gray")
    return np.rint(pixels / 257.0).astype(np.uint8)
