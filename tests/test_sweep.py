"""`make sweep`: a Hydra multirun over seeds writes unique runs in one sweep folder, and the sweep report
gives every run and the mean and standard deviation of the test accuracy, overall and per class."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TINY
from omegaconf import OmegaConf

from convlens.report.sweep import DamagedRuns, build_sweep_report, find_runs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sweep")
    command = [sys.executable, "scripts/sweep.py", "demo_faces", "--seeds", "2", "--outputs-dir", str(base / "outputs"),
               "--reports-dir", str(base / "reports"), *TINY]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (base / "outputs" / "sweeps" / "demo_faces").iterdir()
    (report_dir,) = (base / "reports" / "sweep" / "demo_faces").iterdir()
    return sweep_dir, report_dir


def test_sweep_runs_every_seed_into_its_own_run(sweep: tuple[Path, Path]) -> None:
    sweep_dir, _ = sweep
    runs = find_runs(sweep_dir)
    assert sorted(run.seed for run in runs) == [0, 1] and len({run.root for run in runs}) == 2
    assert all(run.metrics is not None and run.setting == {} for run in runs), "seeds alone make one setting"
    assert (sweep_dir / "multirun.yaml").is_file(), "Hydra's record of the sweep"


def test_sweep_report_has_the_seed_statistics(sweep: tuple[Path, Path]) -> None:
    sweep_dir, report_dir = sweep
    text = (report_dir / "report.md").read_text()
    metrics = [json.loads((run.root / "metrics.json").read_text()) for run in find_runs(sweep_dir)]
    accs = [m["test"]["acc"] for m in metrics]
    row = f"| all runs | 2 | {statistics.fmean(accs):.1%} | {statistics.stdev(accs):.1%} |"
    assert row in text
    happy = [m["per_class_accuracy"]["Happy"] for m in metrics]
    assert f"| Happy | {statistics.fmean(happy):.1%} ± {statistics.stdev(happy):.1%} |" in text
    assert (report_dir / "learning_curves.png").stat().st_size > 0 and (report_dir / "report.html").is_file()


def _make_run(sweep_dir: Path, name: str, seed: int, lr: float, test_acc: float, per_class: dict) -> None:
    """A run folder as the train stage leaves it, with the few files the sweep report reads."""
    root = sweep_dir / "demo_faces" / name
    root.mkdir(parents=True)
    config = {"seed": seed, "data": {"seed": seed, "num_classes": 7}, "optimizer": {"lr": lr},
              "paths": {"output_dir": str(root)}}  # fmt: skip
    OmegaConf.save(OmegaConf.create(config), root / "config.yaml")
    scores = {"acc": test_acc, "loss": 1.0}
    metrics = {"test": scores, "val": scores, "per_class_accuracy": per_class, "epochs": 1, "model": "SimpleCNN",
               "parameters": 10, "data": {"sizes": {}}}  # fmt: skip
    (root / "metrics.json").write_text(json.dumps(metrics))


def test_grid_settings_are_grouped_and_names_escaped(tmp_path: Path) -> None:
    """Runs differing in a grid value form one row each; seeds and paths do not split groups; a
    class name from the run directory is text, not markup; a damaged metrics.json or config.yaml is
    listed with its file and the command that writes it again, the report written for the others, and
    the build fails at the end naming both."""
    sweep_dir = tmp_path / "outputs" / "sweeps" / "demo_faces" / "2026-01-01_00-00-00"
    for index, (seed, lr, acc) in enumerate([(0, 0.1, 0.5), (1, 0.1, 0.7), (0, 0.2, 0.9), (1, 0.2, 0.8)]):
        _make_run(sweep_dir, f"run-{index}", seed, lr, acc, {"<b>x</b>": acc})
    broken = sweep_dir / "demo_faces" / "run-9"
    _make_run(sweep_dir, "run-9", 2, 0.2, 0.0, {})
    (broken / "metrics.json").write_text('{"epochs": NaN}')
    _make_run(sweep_dir, "run-8", 3, 0.1, 0.0, {})
    (sweep_dir / "demo_faces" / "run-8" / "config.yaml").write_text("seed: [1,")
    with pytest.raises(DamagedRuns, match=r"without 2 of 6 runs") as refused:
        build_sweep_report(sweep_dir, tmp_path / "reports")
    for name in ("run-8/config.yaml", "run-9/metrics.json"):
        assert re.search(rf"{name} .*; `make train` \(a new run\) writes it again", str(refused.value))
    text = (tmp_path / "reports" / "sweep" / "demo_faces" / sweep_dir.name / "report.md").read_text()
    assert "| optimizer.lr=0.1 | 2 | 60.0% | 14.1% | 50.0% | 70.0% |" in text
    assert "| optimizer.lr=0.2 | 2 | 85.0% | 7.1% | 80.0% | 90.0% |" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>" not in text
    assert "6 runs, 4 finished" in text and text.count("damaged: ") == 2 and "run-9/metrics.json" in text
