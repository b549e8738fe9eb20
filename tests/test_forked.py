"""``forked_map``: results in the items' order, and workers that leave nothing behind."""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path

import pytest
import torch

from convlens.forked import forked_map

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def test_results_come_back_in_the_items_order() -> None:
    assert forked_map(lambda item: item * item, [3, 1, 2, 5], processes=2) == [9, 1, 4, 25]


def test_workers_remove_their_multiprocessing_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors too large to pickle inline go back through a socket in a ``pymp-*`` folder each worker makes;
    a worker that is terminated rather than left to exit keeps it (one per worker per stage, found by
    the dozen in /tmp). Fails with ``Pool.__exit__``'s terminate() alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the workers inherit it through the fork
    monkeypatch.delitem(multiprocessing.current_process()._config, "tempdir", raising=False)
    for _ in range(10):  # whether a worker is terminated before it exits is a race: ten rounds lose a folder
        found = forked_map(lambda item: torch.full((100_000, 10), float(item)), list(range(6)), processes=2)
        assert [float(tensor[0, 0]) for tensor in found] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert not list(tmp_path.glob("pymp-*"))
