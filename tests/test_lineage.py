"""Lineage of a part of a run file: the evaluate stage records the methods' settings of the manifest, not the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convlens.lineage import MADE_FROM, FileHashes, changed_inputs, describe
from convlens.rundir import MANIFEST, MANIFEST_SETTINGS
from convlens.untrusted import UntrustedInputError


def _write(root: Path, manifest: object) -> None:
    (root / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))


def test_a_part_changes_only_with_what_it_takes(tmp_path: Path) -> None:
    """Timings, notes and figure lists change on every visualize run; parameters, maps and skip reasons are what
    the evaluation read: only they make it stale. A damaged file or a part this version does not know is stale."""
    manifest = {"seconds_total": 3.0, "methods": {"lime": {"seconds": 5.1, "parameters": {"num_samples": 1000},
                                                           "maps": "maps/lime.npz", "notes": []}}}  # fmt: skip
    _write(tmp_path, manifest)
    evaluation = {MADE_FROM: FileHashes(tmp_path).record([MANIFEST_SETTINGS])}
    assert set(evaluation[MADE_FROM]) == {"visualizations/manifest.json#method-settings"}
    manifest["seconds_total"], manifest["methods"]["lime"]["seconds"] = 9.0, 7.7
    manifest["methods"]["lime"]["notes"] = ["redrawn"]
    _write(tmp_path, manifest)
    assert changed_inputs(evaluation, FileHashes(tmp_path)) == []
    manifest["methods"]["lime"]["parameters"]["num_samples"] = 500
    _write(tmp_path, manifest)
    assert changed_inputs(evaluation, FileHashes(tmp_path)) == [MANIFEST_SETTINGS]
    _write(tmp_path, '{"methods": ')
    assert FileHashes(tmp_path).of(MANIFEST_SETTINGS) is None
    assert FileHashes(tmp_path).of(f"{MANIFEST.as_posix()}#unknown") is None
    assert describe(MANIFEST_SETTINGS) == ("visualizations/manifest.json", "the methods' settings")
    with pytest.raises(UntrustedInputError, match="outside"):
        FileHashes(tmp_path).of("../manifest.json#method-settings")
