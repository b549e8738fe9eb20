"""Reliability, round two (issue 25, point 6): staged folders and provenance updates under concurrency.

Four processes swap one staged folder 50 times each and record 50 stage times each in one
provenance.json: nothing is lost, nothing fails, and no temporary folder is left behind. A killed
stage's leftover folder is removed by the next staged folder; a live one is not."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from convlens import atomic, provenance

PROCESSES = 4
ROUNDS = 50


def _swap_and_record(args: tuple[Path, int]) -> None:
    run_dir, worker = args
    for round_ in range(ROUNDS):
        with atomic.staged_folder(run_dir / "visualizations") as staging:
            (staging / "manifest.json").write_text(json.dumps({"worker": worker, "round": round_}))
            (staging / "figure.png").write_bytes(os.urandom(256))
        provenance.record_stage(run_dir, f"stage_{worker}_{round_}", 0.01, {"commit": "a" * 40, "dirty": False})


def _hold_staging(run_dir: Path, started, release) -> None:  # type: ignore[no-untyped-def]
    with atomic.staged_folder(run_dir / "evaluation"):
        started.set()
        release.wait(30)


def test_concurrent_swaps_and_provenance_updates_lose_nothing(tmp_path: Path) -> None:
    provenance.write(tmp_path, {"stages": {}})
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        pool.map(_swap_and_record, [(tmp_path, worker) for worker in range(PROCESSES)])
    stages = provenance.read(tmp_path)["stages"]
    assert len(stages) == PROCESSES * ROUNDS, "a provenance update was lost"
    folder = tmp_path / "visualizations"
    assert sorted(path.name for path in folder.iterdir()) == ["figure.png", "manifest.json"]
    assert json.loads((folder / "manifest.json").read_text())["round"] == ROUNDS - 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["provenance.json", "visualizations"]


def test_a_killed_stages_folder_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    killed = tmp_path / ".visualizations.99999.deadbeef.tmp"
    (killed / "half").mkdir(parents=True)
    (tmp_path / ".visualizations.99999.deadbeef.tmp.lock").touch()  # its holder, no longer held by anyone
    context = multiprocessing.get_context("spawn")
    started, release = context.Event(), context.Event()
    live = context.Process(target=_hold_staging, args=(tmp_path, started, release))
    live.start()
    try:
        assert started.wait(60)
        with atomic.staged_folder(tmp_path / "visualizations") as staging:
            (staging / "manifest.json").write_text("{}")
        left = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("."))
        assert not killed.exists() and any(name.startswith(".evaluation.") for name in left), left
    finally:
        release.set()
        live.join(30)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["evaluation", "visualizations"]


def test_a_stage_folder_that_is_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    """A run copied with its stage folder as a link (or a link planted there): the swap replaces the link,
    leaves what it pointed to alone, and leaves no temporary link behind."""
    pointed = tmp_path / "elsewhere"
    pointed.mkdir()
    (pointed / "kept.txt").write_text("not ours\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "evaluation").symlink_to(pointed, target_is_directory=True)
    with atomic.staged_folder(run_dir / "evaluation") as staging:
        (staging / "evaluation.json").write_text("{}\n")
    assert not (run_dir / "evaluation").is_symlink() and (run_dir / "evaluation" / "evaluation.json").is_file()
    assert (pointed / "kept.txt").read_text() == "not ours\n"
    assert sorted(path.name for path in run_dir.iterdir()) == ["evaluation"]
