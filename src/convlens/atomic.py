"""Outputs written atomically: a reader sees the old file or the complete new one, never a part.

Files are written under a temporary name in the same folder and renamed over the target
(``os.replace`` is atomic on one file system); folders are built under a temporary name and swapped
in when complete, so a killed stage leaves the previous result intact.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

#: Matplotlib stamps its version into PNGs by default; a stable file needs no such metadata.
PNG_METADATA = {"Software": None}


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` as strict JSON: NaN and Infinity are refused (naming ``path``), since JSON has no such
    numbers and other readers reject them; a writer whose values may be undefined writes null."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError as error:
        raise ValueError(f"{path}: not written, it would hold a non-finite number ({error})") from error
    return write_text(path, text + "\n")


def save_figure(figure: Figure, path: str | Path, **kwargs: Any) -> Path:
    """``figure.savefig`` to a temporary file, then renamed; no software stamp in the PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        figure.savefig(temporary, format=path.suffix.lstrip(".") or "png", metadata=PNG_METADATA, **kwargs)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def point(link: str | Path, target: str) -> Path:
    """Make ``link`` a relative symlink to ``target`` (a name in the same folder), replacing it atomically."""
    link = Path(link)
    temporary = _temporary(link)
    temporary.symlink_to(target, target_is_directory=True)
    temporary.replace(link)
    return link


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success it replaces ``target``.

    On an error (or a kill) the temporary folder is removed (or left as a hidden ``.*.tmp`` folder)
    and ``target`` keeps its previous content. The swap is two renames (old aside, new in): a reader
    finds the old folder, the new one, or for an instant none, never a half-written one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary(target)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = _temporary(target) if target.exists() else None
    if previous is not None:
        target.replace(previous)
    staging.replace(target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
