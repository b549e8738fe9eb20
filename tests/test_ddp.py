"""trainer=ddp: two processes on the CPU (gloo) train one run; the sharded test set is counted once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY

from convlens.rundir import load_run

#: An odd test set, so the two ranks' shards differ in size (49 and 48 images).
TEST_SIZE = 97


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outputs = tmp_path_factory.mktemp("outputs")
    command = [
        sys.executable, "scripts/train.py", "experiment=demo_faces", *TINY, f"data.source.test_size={TEST_SIZE}",
        "data.batch_size=32", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.sync_batchnorm=false", f"paths.outputs_dir={outputs}",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [path for path in (outputs / "demo_faces").iterdir() if path.name != "latest"]
    assert len(runs) == 1, f"one run directory for both processes, found {runs}"
    return runs[0]


def test_ddp_trains_one_run_with_two_processes(ddp_run: Path) -> None:
    metrics = json.loads((ddp_run / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs"] == 1
    assert (ddp_run / "checkpoints" / "best.ckpt").is_file() and (ddp_run / "train.log").is_file()
    assert metrics["precision"] == metrics["precision_probe"]["choice"], "the first process's choice, for both"


def test_ddp_test_accuracy_matches_the_saved_models_predictions(ddp_run: Path) -> None:
    """Each rank tests its shard; the synchronized confusion matrix must count every test image exactly
    once, and agree with the best checkpoint's predictions recomputed here in one process."""
    metrics = json.loads((ddp_run / "metrics.json").read_text())
    rows = (ddp_run / "confusion_matrix.csv").read_text().splitlines()[1:]
    confusion = np.array([[int(v) for v in row.split(",")[1:]] for row in rows])
    assert confusion.sum() == TEST_SIZE, "no test image dropped or counted twice across the ranks"

    run = load_run(ddp_run)
    test = run.datamodule.split("test")
    with torch.no_grad():
        predicted = run.model(run.datamodule.preprocess(test.images)).argmax(1).numpy()
    labels = test.labels.numpy()
    recomputed = np.zeros_like(confusion)
    np.add.at(recomputed, (labels, predicted), 1)
    assert (recomputed == confusion).all()
    assert metrics["test"]["acc"] == pytest.approx((predicted == labels).mean(), abs=1e-6)
