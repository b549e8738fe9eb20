"""Tiny data files made in the tests: a cifar10.npz, Kaggle-style FER csv rows, PNG class folders and
fake torchvision CIFAR batches (with torchvision's checksum list pointed at them). Never real data."""

from __future__ import annotations

import hashlib
import lzma
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import CIFAR10

from convlens.data.cifar10 import CIFAR10_CLASSES


def write_cifar_cache(folder: Path, train: int = 60, test: int = 20) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "cifar10.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (train, 32, 32, 3), dtype=np.uint8),
        y_train=rng.integers(0, 10, train),
        x_test=rng.integers(0, 256, (test, 32, 32, 3), dtype=np.uint8),
        y_test=rng.integers(0, 10, test),
    )
    return path


def fer_row(emotion: int, usage: str, pixels: int = 48 * 48, value: int = 7) -> str:
    return f"{emotion},{' '.join([str(value)] * pixels)},{usage}\n"


FER_ROWS = [fer_row(3, "Training"), fer_row(0, "Training"), fer_row(6, "Training"), fer_row(5, "PublicTest"),
            fer_row(1, "PrivateTest"), fer_row(2, "PrivateTest")]  # fmt: skip


def write_fer_csv(path: Path, rows: list[str], encoding: str = "utf-8") -> Path:
    data = ("emotion,pixels,Usage\n" + "".join(rows)).encode(encoding)
    path.write_bytes(lzma.compress(data) if path.suffix == ".xz" else data)
    return path


def write_fer_folders(root: Path, counts: dict[str, int], classes: tuple[str, ...] = ("happy", "sad")) -> Path:
    """``root/<split>/<class>/<i>.png``, ``counts[split]`` images per class, each with its own gray level."""
    for split, count in counts.items():
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for item in range(count):
                Image.fromarray(np.full((48, 48), 10 * item + index, np.uint8)).save(folder / f"{item}.png")
    return root


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar_batches(data_dir: Path, monkeypatch: pytest.MonkeyPatch, per_batch: int = 12) -> dict[str, np.ndarray]:
    """torchvision's ``cifar-10-batches-py/`` layout with ``per_batch`` random images per batch file
    (protocol-2 pickles of dicts, like the official ones), and torchvision's md5 list pointed at
    these files. Returns the arrays a correct reader must produce."""
    folder = data_dir / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    images, labels = {}, {}
    for name in names:
        labels[name] = rng.integers(0, 10, per_batch).tolist()
        images[name] = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        batch = {"batch_label": name, "labels": labels[name], "data": images[name].reshape(per_batch, -1)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps(meta, protocol=2))
    monkeypatch.setattr(CIFAR10, "train_list", [[name, md5(folder / name)] for name in names[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [[names[5], md5(folder / names[5])]])
    monkeypatch.setattr(CIFAR10, "meta", CIFAR10.meta | {"md5": md5(folder / CIFAR10.meta["filename"])})

    def join(batch_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([images[name] for name in batch_names]).transpose(0, 2, 3, 1)
        return x, np.asarray([label for name in batch_names for label in labels[name]], np.int64)

    (x_train, y_train), (x_test, y_test) = join(names[:5]), join(names[5:])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
