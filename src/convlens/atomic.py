"""Outputs written atomically: a reader sees the old file or the complete new one, never a part.

Files are written under a temporary name in the same folder and renamed over the target
(``os.replace`` is atomic on one file system); folders are built under a temporary name and swapped
in when complete, so a killed stage leaves the previous result intact.

Writers that read, change and replace (a staged folder's swap, ``provenance.json``) hold the folder's
lock (:func:`folder_lock`, ``fcntl.flock``), so concurrent stages never lose an update or swap one
folder half-way. Each staging folder is also held by its own lock while it is built: the kernel
releases it when its process dies, so the next staged folder in the same place tells a killed
stage's leftover (removed) from a live one (kept) without guessing from times.
"""

from __future__ import annotations

import fcntl
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
#: The suffix of every temporary name (:func:`_temporary`), and of a staging folder's own lock file.
TEMPORARY_SUFFIX = ".tmp"
HOLDER_SUFFIX = ".lock"


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
    if link.exists() and not link.is_symlink():
        raise FileExistsError(
            f"{link} is a real {'folder' if link.is_dir() else 'file'}, where this project keeps a link to the "
            f"newest one; move it away or rename it (e.g. to the start time of the run it holds) and rerun"
        )
    temporary = _temporary(link)
    temporary.symlink_to(target, target_is_directory=True)
    try:
        temporary.replace(link)
    except OSError:
        temporary.unlink()
        raise
    return link


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success it replaces ``target``.

    On an error the temporary folder is removed and ``target`` keeps its previous content; a killed
    stage leaves it as a hidden ``.*.tmp`` folder, which the next staged folder beside it removes
    (:func:`remove_leftovers`). The swap is two renames (old aside, new in) under the folder's lock:
    a reader finds the old folder, the new one, or for an instant none, never a half-written one,
    and concurrent swaps of one target follow each other.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target.parent)
    staging = _temporary(target)
    with _holding(staging):
        staging.mkdir()
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with folder_lock(target.parent):
            _swap(staging, target)


def _swap(staging: Path, target: Path) -> None:
    """``staging`` in place of ``target``; a ``target`` that is a symlink is replaced, never followed."""
    previous = _temporary(target) if target.exists() or target.is_symlink() else None
    if previous is not None:
        target.replace(previous)
    staging.replace(target)
    if previous is not None and previous.is_symlink():
        previous.unlink()
    elif previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s exclusive lock (``fcntl.flock`` on the folder itself: no lock file is left), blocking
    until free."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def _holding(staging: Path) -> Iterator[None]:
    """Lock ``staging``'s holder file for as long as the folder is being built (created before the folder,
    removed after it was swapped in or deleted), so :func:`remove_leftovers` never takes a live folder."""
    holder = staging.with_name(staging.name + HOLDER_SUFFIX)
    with open(holder, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            holder.unlink(missing_ok=True)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary folders (``.*.tmp``) in ``folder`` that no live process holds: those of killed
    stages, and the old folders a killed swap had set aside. Returns what was removed."""
    removed = []
    with folder_lock(folder):
        for path in sorted(Path(folder).glob(f".*{TEMPORARY_SUFFIX}")):
            if path.is_dir() and not path.is_symlink() and _abandoned(path):
                shutil.rmtree(path, ignore_errors=True)
                path.with_name(path.name + HOLDER_SUFFIX).unlink(missing_ok=True)
                removed.append(path)
    return removed


def _abandoned(staging: Path) -> bool:
    """No process holds ``staging``'s holder file (or it has none: a folder set aside by a swap)."""
    holder = staging.with_name(staging.name + HOLDER_SUFFIX)
    if not holder.exists():
        return True
    with open(holder, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
