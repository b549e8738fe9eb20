"""Decoded-array caches named after their source's content, written atomically, read without pickle.

A cache's file name carries a digest of what it was decoded from (a file's sha256, or for a folder
a manifest of relative paths, sizes and modification times), so a changed source is decoded again
instead of being answered by a stale cache. Without an explicit cache folder the data folder is
used when it is writable, else the user cache folder (``platformdirs``: ``~/.cache/convlens`` on
Linux), so a read-only data folder works too.
"""

from __future__ import annotations

import errno
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import platformdirs

from convlens import atomic

#: What a folder that cannot be written to raises: try the next candidate folder.
READ_ONLY_ERRORS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def user_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("convlens"))


def cache_folders(cache_dir: str | Path | None, data_dir: Path) -> tuple[Path, ...]:
    """Where a cache may live, in order: the chosen folder alone, or the data folder, then the user's."""
    return (Path(cache_dir),) if cache_dir is not None else (data_dir, user_cache_dir())


def folder_digest(root: Path, files: Iterable[Path]) -> str:
    """sha256 of the manifest ``relative path, size, mtime`` of ``files``: moving, adding, removing or
    rewriting a file changes it, without reading every image."""
    lines = []
    for path in sorted(files):
        stat = path.stat()
        lines.append(f"{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def cached_arrays(
    name: str, folders: tuple[Path, ...], keys: tuple[str, ...], decode: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], Path]:
    """The arrays cached as ``name`` in the first folder holding it, else ``decode()``'s, now cached;
    and the cache file's path."""
    for folder in folders:
        if (folder / name).is_file():
            return read_npz(folder / name, keys, f"delete {folder / name} to decode the data again"), folder / name
    arrays = decode()
    return arrays, write_npz(name, folders, arrays)


def write_npz(name: str, folders: tuple[Path, ...], arrays: dict[str, np.ndarray]) -> Path:
    """Write atomically into the first writable folder; none writable is an error naming them all."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    refused = []
    for folder in folders:
        try:
            return atomic.write_bytes(folder / name, buffer.getvalue())
        except OSError as error:
            if error.errno not in READ_ONLY_ERRORS:
                raise
            refused.append(f"{folder} ({error.strerror})")
    raise PermissionError(
        f"cannot write the cache {name} into {' or '.join(refused)}; "
        'pass a writable folder, e.g. ARGS="data.source.cache_dir=/tmp/convlens-cache"'
    )


def read_npz(path: Path, keys: tuple[str, ...], fix: str) -> dict[str, np.ndarray]:
    """All ``keys`` of an npz, never unpickled; a damaged file or object array is named with ``fix``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in keys if key not in npz.files]
            if missing:
                raise ValueError(f"{path} lacks arrays {missing} (it has {npz.files}); {fix}")
            return {key: _member(npz, key, path, fix) for key in keys}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a readable npz file ({error}); {fix}") from error


def _member(npz: np.lib.npyio.NpzFile, key: str, path: Path, fix: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise ValueError(f"{path}: array {key} cannot be read ({error}); {fix}") from error
        raise ValueError(
            f"{path}: {key} is an object array, which only pickle can read, so it was not loaded "
            f"(pickled data can carry code); save it as a plain numeric array; {fix}"
        ) from error
