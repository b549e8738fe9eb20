"""A visualize run of some methods (``methods=[...]``) keeps the figures of the others.

The stage rebuilds ``visualizations/`` as a whole (built aside, swapped in), so without this a run of
two methods would drop every other method's figures and maps, and the report and evaluation with
them. The previous figures are kept only when they show what the new ones would: made from the same
checkpoint and config (``made_from``) and with the same image selection; otherwise they are stale and
are dropped, with a warning naming them and the command that draws everything again.

The previous folder is untrusted: only registered methods' own folders and ``maps/<method>.npz`` are
copied, file by file, each resolved inside the run directory (:func:`convlens.untrusted.inside`) and
never through a symbolic link.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convlens.registry import METHODS
from convlens.run_files import read_manifest
from convlens.rundir import MAPS_NAME, VISUALIZATIONS
from convlens.untrusted import UntrustedInputError, inside
from convlens.visualize.methods import MethodResult

log = logging.getLogger(__name__)


def kept_methods(
    root: Path, drawn: list[str], made_from: Mapping[str, str], selection: Mapping[str, Any]
) -> dict[str, tuple[MethodResult, dict[str, Any]]]:
    """The previous run's methods that are not ``drawn`` now, each as its result and manifest
    parameters, when the previous figures were made from ``made_from`` with ``selection``; else none."""
    previous = read_manifest(root)
    others = [name for name in (previous or {}).get("methods", {}) if name not in drawn]
    if previous is None or not others:
        return {}
    if previous.get("made_from") != dict(made_from) or previous.get("selection") != dict(selection):
        log.warning("%s: dropping the figures of %s, made from another checkpoint, config or image selection; "
                    "`make visualize RUN=%s` draws every method again", root, ", ".join(others), root)  # fmt: skip
        return {}
    return {name: _result(root, name, previous) for name in others}


def copy_kept(root: Path, kept: Mapping[str, tuple[MethodResult, dict[str, Any]]], out_dir: Path) -> None:
    """Copy each kept method's folder and maps from ``root``'s visualizations into ``out_dir``."""
    for name, (result, _) in kept.items():
        source = root / VISUALIZATIONS / name
        files = [path.relative_to(root / VISUALIZATIONS) for path in sorted(source.rglob("*")) if path.is_file()]
        for relative in [*files, *([Path(result.maps)] if result.maps else [])]:
            _copy_one(root, relative, out_dir)


def _result(root: Path, name: str, previous: dict[str, Any]) -> tuple[MethodResult, dict[str, Any]]:
    summary, maps = previous["methods"][name], previous["methods"][name].get("maps")
    if name not in METHODS:
        _refuse(root, f"lists '{name}', not a registered method")
    if maps is not None and maps != f"{MAPS_NAME}/{name}.npz":
        _refuse(root, f"methods.{name}.maps={maps!r} is not {MAPS_NAME}/{name}.npz")
    entries = [entry for entry in previous.get("entries", []) if entry.get("method") == name]
    outside = [entry.get("file") for entry in entries if not str(entry.get("file", "")).startswith(f"{name}/")]
    if outside:
        _refuse(root, f"figures of '{name}' lie outside its folder: {outside}")
    result = MethodResult(float(summary.get("seconds", 0.0)), entries, summary.get("skipped"), maps,
                          list(summary.get("notes", [])))  # fmt: skip
    return result, dict(summary.get("parameters") or {})


def _refuse(root: Path, problem: str) -> None:
    raise UntrustedInputError(f"{root / VISUALIZATIONS}/manifest.json {problem}; rerun `make visualize RUN={root}`")


def _copy_one(root: Path, relative: Path, out_dir: Path) -> None:
    """One file of the previous visualizations into ``out_dir``, refused through a link or outside the run."""
    link = root / VISUALIZATIONS / relative
    if link.is_symlink():
        raise UntrustedInputError(f"{link} is a symbolic link; refusing to copy it (rerun `make visualize RUN={root}`)")
    source = inside(root, VISUALIZATIONS, str(relative))
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
