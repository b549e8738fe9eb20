"""Lineage instead of modification times: what each derived artefact of a run was made from.

Every artefact a stage derives from a run directory (``visualizations/manifest.json``,
``evaluation/evaluation.json``, ``generator/metrics.json``, the report) records under :data:`MADE_FROM`
the sha256 of each run-directory file it read, by run-relative path, hashed *before* it was read: a
file that changes while the stage runs then makes the artefact stale, never falsely current. An
artefact is stale exactly when one of those files now has another hash (or is gone). Modification times
decide nothing: a copied run (``cp -r``) is as current as its original, and an evaluation that finished
after the maps were drawn again is still stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convlens.provenance import sha256
from convlens.untrusted import inside

#: The key under which an artefact records ``{run-relative path: sha256}`` of the files it was made from.
MADE_FROM = "made_from"


class FileHashes:
    """The sha256 of a run directory's files, each hashed once (a report checks the checkpoint for the
    maps and again for the evaluation)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._known: dict[str, str | None] = {}

    def of(self, relative: str | Path) -> str | None:
        """The file's sha256, None when it does not exist; a path leaving the run is refused."""
        key = Path(relative).as_posix()
        if key not in self._known:
            path = inside(self.root, key)
            self._known[key] = sha256(path) if path.is_file() else None
        return self._known[key]

    def record(self, relatives: list[str | Path]) -> dict[str, str]:
        """``{run-relative path: sha256}`` of those of ``relatives`` that exist."""
        found = {Path(relative).as_posix(): self.of(relative) for relative in relatives}
        return {key: digest for key, digest in found.items() if digest is not None}


def changed_inputs(artefact: dict[str, Any] | None, hashes: FileHashes) -> list[str]:
    """The files ``artefact`` was made from whose hash differs now (or that are gone): non-empty exactly
    when it is stale. An artefact without a record (written before lineage was recorded) has none."""
    recorded = (artefact or {}).get(MADE_FROM) or {}
    return [path for path, digest in recorded.items() if hashes.of(path) != digest]
