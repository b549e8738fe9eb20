"""Lineage instead of modification times: what each derived artefact of a run was made from.

Every artefact a stage derives from a run directory (``visualizations/manifest.json``,
``evaluation/evaluation.json``, ``generator/metrics.json``, the report) records under :data:`MADE_FROM`
the sha256 of each run-directory file it read, by run-relative path, hashed *before* it was read: a
file that changes while the stage runs then makes the artefact stale, never falsely current. An
artefact is stale exactly when one of those files now has another hash (or is gone). Modification times
decide nothing: a copied run (``cp -r``) is as current as its original, and an evaluation that finished
after the maps were drawn again is still stale.

A stage that reads only part of a JSON file records that part instead, under ``<path>#<part>`` (a name of
:data:`PARTS`), its digest the sha256 of the part's canonical JSON: the evaluate stage reads each method's
settings from the visualize stage's manifest, whose timings change on every visualize run, so figures drawn
again with the same settings leave the evaluation current (the report had withheld its findings as stale
after LIME's figures alone were redrawn).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens.provenance import sha256
from convlens.untrusted import UntrustedInputError, inside, read_json

#: The key under which an artefact records ``{run-relative path: sha256}`` of the files it was made from.
MADE_FROM = "made_from"
#: Between a run file's path and the name of one of its :data:`PARTS` in a ``made_from`` key.
PART_SEPARATOR = "#"


@dataclass(frozen=True)
class Part:
    """A part of a JSON run file: what the report calls it, and how to take it from the parsed file."""

    description: str
    take: Callable[[Any], Any]


def method_settings(manifest: Any) -> dict[str, dict[str, Any]]:
    """Per method of a visualize manifest what the evaluate stage reads of it: its parameters, its maps' file and
    why it was skipped (``convlens.evaluate.sample.planned_methods`` reads exactly this)."""
    methods = manifest.get("methods") if isinstance(manifest, dict) else None
    if not isinstance(methods, dict):
        return {}
    return {name: {key: entry.get(key) for key in ("parameters", "maps", "skipped")}
            for name, entry in methods.items() if isinstance(entry, dict)}  # fmt: skip


#: The parts of run files an artefact may be made from instead of the whole file.
PARTS = {"method-settings": Part("the methods' settings", method_settings)}


def part_key(relative: str | Path, part: str) -> str:
    """The ``made_from`` key of ``part`` (a name of :data:`PARTS`) of the run file ``relative``."""
    return f"{Path(relative).as_posix()}{PART_SEPARATOR}{part}"


def describe(key: str) -> tuple[str, str]:
    """A ``made_from`` key as (the run-relative path, what of it: '' for the whole file)."""
    path, _, part = key.partition(PART_SEPARATOR)
    return path, PARTS[part].description if part in PARTS else part


class FileHashes:
    """The sha256 of a run directory's files, each hashed once (a report checks the checkpoint for the
    maps and again for the evaluation)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._known: dict[str, str | None] = {}

    def of(self, relative: str | Path) -> str | None:
        """The file's sha256 (or its part's, for a :func:`part_key`), None when it does not exist, or for a part
        of a file that is not valid JSON or a part this version does not know; a path leaving the run is refused."""
        key = Path(relative).as_posix()
        if key not in self._known:
            self._known[key] = self._digest(key)
        return self._known[key]

    def _digest(self, key: str) -> str | None:
        name, _, part = key.partition(PART_SEPARATOR)
        path = inside(self.root, name)
        if not path.is_file() or (part and part not in PARTS):
            return None
        if not part:
            return sha256(path)
        try:
            taken = PARTS[part].take(read_json(path))
        except UntrustedInputError:
            return None
        return hashlib.sha256(json.dumps(taken, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def record(self, relatives: list[str | Path]) -> dict[str, str]:
        """``{run-relative path: sha256}`` of those of ``relatives`` that exist."""
        found = {Path(relative).as_posix(): self.of(relative) for relative in relatives}
        return {key: digest for key, digest in found.items() if digest is not None}


def changed_inputs(artefact: dict[str, Any] | None, hashes: FileHashes) -> list[str]:
    """The files ``artefact`` was made from whose hash differs now (or that are gone): non-empty exactly
    when it is stale. An artefact without a record (written before lineage was recorded) has none."""
    recorded = (artefact or {}).get(MADE_FROM) or {}
    return [path for path, digest in recorded.items() if hashes.of(path) != digest]
