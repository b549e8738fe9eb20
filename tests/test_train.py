"""Training end to end: the real entry point, the run directory, determinism, resume errors."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SCHEDULERS, TINY
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from convlens.compare.runs import train_arguments
from convlens.compare.schema import CompareConfig
from convlens.config import ConfigError
from convlens.hardware import cpu_model
from convlens.models import FerCNN
from convlens.rundir import RunDirError, load_run
from convlens.training import run as training_run
from convlens.training.run import resolve_precision, train
from convlens.untrusted import UntrustedInputError


@pytest.fixture(scope="module")
def entry_point_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `scripts/train.py` run (1 epoch, tiny synthetic data), shared by the tests below."""
    outputs = tmp_path_factory.mktemp("outputs")
    command = [sys.executable, "scripts/train.py", "experiment=demo_faces", *TINY, f"paths.outputs_dir={outputs}",
               "trainer.log_every_n_steps=2"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (outputs / CONSOLE).write_text(result.stdout + result.stderr)
    return (outputs / "demo_faces" / "latest").resolve()


#: What the entry point printed (stdout and stderr, not a terminal), beside the experiment folders.
CONSOLE = "console.txt"


def test_run_directory_is_complete(entry_point_run: Path) -> None:
    for name in ("config.yaml", "class_names.json", "metrics.json", "provenance.json", "confusion_matrix.csv",
                 "confusion_matrix.png", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "train.log"):  # fmt: skip
        assert (entry_point_run / name).is_file(), name
    assert not (entry_point_run / ".hydra").exists() and "val acc" in (entry_point_run / "train.log").read_text()
    metrics = json.loads((entry_point_run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    for split in ("train", "val", "test"):
        assert 0.0 <= metrics[split]["acc"] <= 1.0 and metrics[split]["loss"] > 0
    assert list(metrics["per_class_accuracy"]) == json.loads((entry_point_run / "class_names.json").read_text())
    rows = [line.split(",")[1:] for line in (entry_point_run / "confusion_matrix.csv").read_text().splitlines()[1:]]
    confusion = [[int(count) for count in row] for row in rows]
    assert sum(map(sum, confusion)) == 96, "the test confusion matrix counts every test image once"
    per_class = [row[i] / max(sum(row), 1) for i, row in enumerate(confusion)]
    assert list(metrics["per_class_accuracy"].values()) == pytest.approx(per_class, abs=1e-6)
    assert metrics["test"]["balanced_acc"] == pytest.approx(sum(per_class) / len(per_class), abs=1e-5)
    tp = [row[i] for i, row in enumerate(confusion)]
    f1 = [2 * tp[i] / max(sum(confusion[i]) + sum(row[i] for row in confusion), 1) for i in range(len(tp))]
    assert metrics["test"]["macro_f1"] == pytest.approx(sum(f1) / len(f1), abs=1e-5)
    assert metrics["data"]["sizes"] == {"train": 256, "val": 96, "test": 96}
    counts = metrics["data"]["train_class_counts"]  # the report sets each class's rarity beside its confusions
    assert len(counts) == len(metrics["per_class_accuracy"]) and sum(counts) == 256 and min(counts) > 0
    probe = metrics["precision_probe"]
    assert metrics["precision"] == probe["choice"], "the precision actually used is the probe's choice"
    assert probe["cpu"] == cpu_model() and probe["fp32_seconds_per_image"] > 0 and probe["bf16_seconds_per_image"] > 0
    provenance = json.loads((entry_point_run / "provenance.json").read_text())
    assert provenance["stages"]["train"] > 0 and provenance["seed"] == 42
    assert str(ROOT) not in (entry_point_run / "config.yaml").read_text(), "no machine paths in the run dir"


def test_clean_training_accuracy_is_the_best_checkpoints_on_unaugmented_training_images(entry_point_run: Path) -> None:
    """metrics.json's ``train_clean``: as many training images as validation holds, drawn with the run's
    seed, un-augmented, in eval mode; recomputed here from the run directory alone (fp32; the run may
    have used bf16, so one image may differ)."""
    clean = json.loads((entry_point_run / "metrics.json").read_text())["train_clean"]
    run = load_run(entry_point_run)
    split = run.datamodule.split("train")
    chosen = torch.randperm(len(split), generator=torch.Generator().manual_seed(42))[: clean["images"]]
    with torch.no_grad():
        predicted = run.model(run.datamodule.preprocess(split.images[chosen])).argmax(dim=1)
    assert clean["images"] == 96, "as many as the validation split holds"
    assert clean["acc"] == pytest.approx(float((predicted == split.labels[chosen]).float().mean()), abs=1.5 / 96)


def test_tensorboard_has_scalars_and_confusion_matrix(entry_point_run: Path) -> None:
    events = EventAccumulator(str(entry_point_run / "tensorboard"), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "test/acc"} <= scalars
    assert {"val/confusion_matrix", "test/confusion_matrix"} <= set(events.Tags()["images"])
    assert "train/loss_step" in scalars, "training loss per step, not only per epoch"
    val_steps = [event.step for event in events.Scalars("val/acc")]
    assert [image.step for image in events.Images("val/confusion_matrix")] == val_steps, "images share the x axis"


def test_console_and_train_log_have_one_line_per_epoch(entry_point_run: Path) -> None:
    """Output to a file: no progress-bar frames, no known third-party noise; an epoch line in both."""
    console = (entry_point_run.parents[1] / CONSOLE).read_text()
    assert "\r" not in console and "it/s]" not in console, "no progress-bar frames in a file"
    assert "litlogger" not in console and "LeafSpec" not in console
    log = (entry_point_run / "train.log").read_text()
    epoch_lines = [line for line in log.splitlines() if "epoch 1/1: train loss" in line]
    assert len(epoch_lines) == 1 and "| val loss" in epoch_lines[0] and "| lr " in epoch_lines[0]
    assert "epoch 1/1: train loss" in console and "val acc" in log.splitlines()[-1]


def test_trained_run_loads_back(entry_point_run: Path) -> None:
    run = load_run(entry_point_run)
    assert run.class_names[3] == "Happy" and run.datamodule.channels == 1
    assert not run.model.training


def test_same_seed_gives_identical_metrics(tiny_run_cfg) -> None:
    first = train(tiny_run_cfg("demo_shapes", name="a"))
    second = train(tiny_run_cfg("demo_shapes", name="b"))
    numbers = ("train", "val", "test", "per_class_accuracy")
    assert {k: first[k] for k in numbers} == {k: second[k] for k in numbers}


def test_checkpoint_with_other_class_count_is_refused(tiny_run_cfg, entry_point_run: Path) -> None:
    faces_checkpoint = entry_point_run / "checkpoints" / "last.ckpt"  # 7 classes, 1 channel
    cfg = tiny_run_cfg("demo_shapes", f"ckpt_path={faces_checkpoint}")  # 10 classes, 3 channels
    with pytest.raises(RunDirError, match=r"does not fit the model: .* has shape .*train from scratch"):
        train(cfg)


def test_missing_resume_checkpoint_is_named(tiny_run_cfg, tmp_path: Path) -> None:
    with pytest.raises(UntrustedInputError, match=r"ckpt_path=.*nothing.ckpt: checkpoint .* does not exist"):
        train(tiny_run_cfg("demo_shapes", f"ckpt_path={tmp_path / 'nothing.ckpt'}"))


def test_missing_cifar_data_dir_is_explained(compose_train, tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets.utils

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(torchvision.datasets.utils, "_urlretrieve", offline)  # this test never downloads
    cfg = compose_train("experiment=cifar10_resnet18", f"data.data_dir={tmp_path / 'missing'}",
                        f"paths.output_dir={tmp_path / 'run'}")  # fmt: skip
    with pytest.raises(RuntimeError, match=r"CIFAR-10 is not in .*missing and could not be downloaded"):
        train(cfg)


def test_a_run_made_with_latest_false_leaves_latest_alone(tiny_run_cfg, tmp_path: Path) -> None:
    """`make compare` trains with paths.latest=false, so `make report EXPERIMENT=...` still finds the user's run."""
    train(tiny_run_cfg("demo_faces", name="mine"))
    train(tiny_run_cfg("demo_faces", "paths.latest=false", name="compared"))
    assert (tmp_path / "latest").resolve() == (tmp_path / "mine").resolve()
    assert "paths.latest=false" in train_arguments(CompareConfig(), "resnet18", tmp_path / "compared")


def test_resume_from_last_checkpoint_continues_training(tiny_run_cfg, tmp_path: Path) -> None:
    # A step schedule can be extended on resume; one-cycle fixes its length at the start (same max_epochs only).
    schedule = "scheduler=step"
    train(tiny_run_cfg("demo_faces", schedule, name="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    metrics = train(tiny_run_cfg("demo_faces", schedule, f"ckpt_path={last}", "trainer.max_epochs=2", name="resumed"))
    assert metrics["epochs"] == 2


@pytest.mark.parametrize(
    ("accelerator", "cuda", "expected"),
    [("auto", True, "bf16-mixed"), ("gpu", True, "bf16-mixed"), ("cuda", True, "bf16-mixed")],
)
def test_auto_precision_on_a_gpu_is_bf16(monkeypatch, accelerator, cuda, expected) -> None:
    """bf16 on bf16-capable GPUs, without a probe; an explicit choice is kept."""
    monkeypatch.setattr(training_run.torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(training_run.torch.cuda, "is_bf16_supported", lambda: True)
    net = FerCNN(7, 1, widths=(8, 16, 32, 64))
    assert resolve_precision("auto", accelerator, net, (1, 48, 48)) == (expected, None)
    assert resolve_precision("16-mixed", accelerator, net, (1, 48, 48)) == ("16-mixed", None)


def test_auto_precision_on_the_cpu_is_measured(monkeypatch) -> None:
    """With accelerator=cpu the CPU is probed even when a GPU is present."""
    monkeypatch.setattr(training_run.torch.cuda, "is_available", lambda: True)
    precision, record = resolve_precision("auto", "cpu", FerCNN(7, 1, widths=(8, 16, 32, 64)), (1, 48, 48))
    assert record is not None and precision == record["choice"] in ("32-true", "bf16-mixed")


def test_training_leaves_the_process_flags_as_it_found_them(tiny_run_cfg) -> None:
    """Trainer(deterministic=True) switches torch to deterministic kernels process-wide; after train()
    a deconvnet (max-unpooling, which has no deterministic kernel) must still run in the same process."""
    assert not torch.are_deterministic_algorithms_enabled()
    train(tiny_run_cfg("demo_faces", "trainer.deterministic=true"))
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("batches", [1, 2, 5])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_short_runs_train_with_every_scheduler(tiny_run_cfg, scheduler: str, batches: int, caplog) -> None:
    """A smoke run of 1 epoch and 1-5 batches trains with any schedule; one-cycle, which cannot warm up
    in so few steps (torch divides by zero), falls back to the constant rate and says which keys to raise."""
    cfg = tiny_run_cfg("demo_faces", f"scheduler={scheduler}", f"trainer.limit_train_batches={batches}",
                       "trainer.limit_val_batches=1", "run_test=false", name=f"{scheduler}-{batches}")  # fmt: skip
    metrics = train(cfg)
    assert metrics["epochs"] == 1 and metrics["val"]["acc"] is not None
    fell_back = "Training at the constant rate optimizer.lr" in caplog.text
    assert fell_back == (scheduler == "onecycle"), caplog.text[-500:]
    if fell_back:
        assert "trainer.max_epochs x trainer.limit_train_batches" in caplog.text


@pytest.mark.parametrize(
    "overrides",
    [["trainer.limit_train_batches=3"], ["trainer.accumulate_grad_batches=3", "scheduler.pct_start=0.3"]],
)
def test_a_one_cycle_just_long_enough_runs_to_its_end(tiny_run_cfg, overrides: list[str], caplog) -> None:
    """2 epochs of 3 batches (6 steps, warm-up to step 0.2), or of 4 batches accumulated 3 at a time (2 steps an
    epoch, the second of 1 batch): Lightning's estimate of the run's steps must be the steps it takes, or torch
    refuses the last ones. The schedule, not the constant-rate fallback, sets the epochs' learning rates."""
    short = ("trainer.max_epochs=2", "trainer.limit_val_batches=1", "run_test=false")
    cfg = tiny_run_cfg("demo_faces", *short, *overrides)
    with caplog.at_level(logging.INFO, logger="convlens.training.module"):  # the epoch lines
        assert train(cfg)["epochs"] == 2 and "constant rate" not in caplog.text
    rates = [float(rate) for rate in re.findall(r"\| lr ([-+.e0-9]+) \|", caplog.text)]
    assert len(rates) == 2 and all(rate < cfg.optimizer.lr for rate in rates), rates


def test_a_share_of_no_training_batch_is_refused_before_the_run_directory(tiny_run_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer.limit_train_batches=0.1 keeps 0.1 x 4 < 1"):
        train(tiny_run_cfg("demo_faces", "trainer.limit_train_batches=0.1", name="none"))
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("experiment", "name"),
    [("demo_shapes", "ResNet-18 at 0.125 of the paper's width"), ("cifar10_resnet18", "ResNet-18"),
     ("demo_faces", "FerCNN")],
)  # fmt: skip
def test_the_model_is_named_with_its_width_when_it_is_not_the_papers(
    compose_train, experiment: str, name: str
) -> None:  # fmt: skip
    assert training_run._model_name(compose_train(f"experiment={experiment}")) == name
