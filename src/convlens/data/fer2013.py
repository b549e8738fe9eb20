"""FER2013 from Kaggle's ``fer2013.csv`` (plain or ``.csv.xz``) or its image-folder layout.

Decoded once into an npz cache in ``cache_dir``, keyed by the source file's name and size, so
later runs start in a second and a read-only ``data_dir`` works.
"""

from __future__ import annotations

import csv
import io
import lzma
from pathlib import Path

import numpy as np

from convlens.data.arrays import ArraySplit, DatasetArrays, seeded_holdout

FER2013_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
PIXELS = 48 * 48
WHERE_TO_GET = (
    "FER2013 cannot be downloaded automatically (Kaggle requires a login). Download fer2013.csv from "
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data "
    "(or the image-folder version train/<class>/*.jpg, test/<class>/*.jpg from "
    "https://www.kaggle.com/datasets/msambare/fer2013) and put it into {data_dir}, "
    "or pass data.data_dir=<folder that holds it>."
)


class Fer2013Source:
    """Training -> train, PublicTest -> val, PrivateTest -> test for the csv; for image folders the
    val split is a seeded ``val_fraction`` of train/."""

    def __init__(self, data_dir: str, cache_dir: str, val_fraction: float = 0.1, split_seed: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir)
        self.val_fraction = val_fraction
        self.split_seed = split_seed

    def load(self) -> DatasetArrays:
        source = find_source(self.data_dir)
        cache = self.cache_dir / f"fer2013-{source.name}-{_size(source)}.npz"
        if not cache.exists():
            splits = read_csv(source) if source.is_file() else self._read_folders(source)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(".partial.npz")
            np.savez(partial, **{f"{kind}_{name}": getattr(split, kind) for name, split in splits.items()
                                 for kind in ("images", "labels")})  # fmt: skip
            partial.replace(cache)
        with np.load(cache, allow_pickle=False) as npz:
            splits = {
                name: ArraySplit(npz[f"images_{name}"], npz[f"labels_{name}"]) for name in USAGE_TO_SPLIT.values()
            }
        files = (source,) if source.is_file() else ()
        return DatasetArrays(splits["train"], splits["val"], splits["test"], FER2013_CLASSES, files)

    def _read_folders(self, root: Path) -> dict[str, ArraySplit]:
        train = read_image_folder(root / "train")
        held_out_count = max(1, round(len(train) * self.val_fraction))
        keep, held_out = seeded_holdout(len(train), held_out_count, self.split_seed)
        return {"train": train.subset(keep), "val": train.subset(held_out), "test": read_image_folder(root / "test")}


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*.*"))


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
    """Parse Kaggle's ``emotion,pixels,Usage`` csv; a bad row is reported with its line number."""
    images: dict[str, list[np.ndarray]] = {name: [] for name in USAGE_TO_SPLIT.values()}
    labels: dict[str, list[int]] = {name: [] for name in USAGE_TO_SPLIT.values()}
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [column.strip() for column in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise ValueError(f"{path}: line 1 must be the header 'emotion,pixels,Usage', got {header}")
        for line, row in enumerate(reader, start=2):
            split, label, pixels = _parse_row(path, line, row)
            images[split].append(pixels)
            labels[split].append(label)
    for name, split_images in images.items():
        if not split_images:
            raise ValueError(f"{path} has no rows for the {name} split; expected Usage values {list(USAGE_TO_SPLIT)}")
    return {
        name: ArraySplit(np.stack(images[name]).reshape(-1, 48, 48, 1), np.asarray(labels[name], np.int64))
        for name in images
    }


def _parse_row(path: Path, line: int, row: list[str]) -> tuple[str, int, np.ndarray]:
    where = f"{path} line {line}"
    if len(row) != 3:
        raise ValueError(f"{where}: expected 3 fields emotion,pixels,Usage, got {len(row)}")
    emotion, pixel_text, usage = row
    if usage not in USAGE_TO_SPLIT:
        raise ValueError(f"{where}: Usage '{usage}' is not one of {list(USAGE_TO_SPLIT)}")
    if not emotion.isdigit() or int(emotion) >= len(FER2013_CLASSES):
        raise ValueError(f"{where}: emotion '{emotion}' is not a label 0-{len(FER2013_CLASSES) - 1}")
    pixels = np.loadtxt(io.StringIO(pixel_text), dtype=np.int64, ndmin=1) if pixel_text.strip() else np.empty(0)
    if pixels.size != PIXELS:
        raise ValueError(f"{where}: 'pixels' has {pixels.size} values, expected {PIXELS} (48x48); the row is damaged")
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{where}: 'pixels' values must lie in 0-255")
    return USAGE_TO_SPLIT[usage], int(emotion), pixels.astype(np.uint8)


def read_image_folder(root: Path) -> ArraySplit:
    """``root/<class>/*.{jpg,png}`` with class folders named like FER2013's classes (any case)."""
    from PIL import Image

    by_name = {name.lower(): index for index, name in enumerate(FER2013_CLASSES)}
    images, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.lower() not in by_name:
            raise ValueError(f"{folder}: folder name is not a FER2013 class; expected one of {list(FER2013_CLASSES)}")
        for file in sorted(folder.glob("*")):
            if file.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            with Image.open(file) as image:
                pixels = np.asarray(image.convert("L"))
            if pixels.shape != (48, 48):
                raise ValueError(f"{file}: expected a 48x48 image, got {pixels.shape[1]}x{pixels.shape[0]}")
            images.append(pixels)
            labels.append(by_name[folder.name.lower()])
    if not images:
        raise FileNotFoundError(f"no images under {root}/<class>/; " + WHERE_TO_GET.format(data_dir=root.parent))
    return ArraySplit(np.stack(images)[..., None], np.asarray(labels, np.int64))
