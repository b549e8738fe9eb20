"""The train stage's guarantees (docs/reliability.md): safe loading of checkpoints and run directories,
unique run directories, `latest` only for finished runs, identical resume, bounded memory."""

from __future__ import annotations

import builtins
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT, TINY, train_tiny
from hydra.utils import instantiate
from omegaconf import OmegaConf

from convlens.config import ConfigError
from convlens.report.model_table import model_rows
from convlens.rundir import RunDirError, create_run_dir, load_run, resolve_runs
from convlens.training.module import ClassifierModule
from convlens.training.run import build_trainer, check_resume_checkpoint, train
from convlens.untrusted import UntrustedInputError, load_checkpoint


class InterruptAtEpoch(pl.Callback):
    """Stops training with an error as epoch ``epoch`` starts, like a killed run (its checkpoints stay)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise KilledRun(f"killed at the start of epoch {self.epoch}")


class KilledRun(RuntimeError):
    pass


class Payload:
    """Pickles into a call of ``open(path, 'w')``: loading it with ``weights_only=False`` creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return builtins.open, (str(self.path), "w")


INTERRUPT = ["+callbacks.interrupt._target_=test_reliability.InterruptAtEpoch", "+callbacks.interrupt.epoch=1"]
NUMBERS = ("train", "val", "test", "per_class_accuracy", "best_epoch", "epochs")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny demo_faces run whose directory the tests below copy and tamper with."""
    return train_tiny(tmp_path_factory.mktemp("trained") / "run", "demo_faces")


def _copy_run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("tensorboard"))
    return copy


# --- 1. A checkpoint is data, never code -------------------------------------------------------------------------


def test_checkpoint_with_pickled_code_is_refused_when_loading_a_run(trained: Path, tmp_path: Path) -> None:
    run = _copy_run(trained, tmp_path)
    marker = tmp_path / "code-ran"
    torch.save({"state_dict": {}, "payload": Payload(marker)}, run / "checkpoints" / "best.ckpt")
    with pytest.raises(UntrustedInputError, match=r"best.ckpt holds objects other than tensors .* not loaded"):
        load_run(run)
    assert not marker.exists(), "the pickled call ran"


def test_checkpoint_with_pickled_code_is_refused_before_resuming(tiny_run_cfg, trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.ckpt"
    checkpoint = load_checkpoint(trained / "checkpoints" / "last.ckpt") | {"payload": Payload(marker)}
    torch.save(checkpoint, crafted)
    with pytest.raises(UntrustedInputError, match=r"ckpt_path=.*crafted.ckpt: checkpoint .* holds objects other"):
        train(tiny_run_cfg("demo_faces", f"ckpt_path={crafted}", name="resumed"))
    assert not marker.exists(), "the pickled call ran"
    assert not (tmp_path / "resumed").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [(lambda data: b"", r"is empty \(0 bytes\): it was not written completely"),
     (lambda data: data[: len(data) // 2], r"is truncated or corrupted and cannot be read")],
    ids=["zero-byte", "truncated"],
)  # fmt: skip
def test_damaged_checkpoint_is_named(trained: Path, tmp_path: Path, tiny_run_cfg, damage, message: str) -> None:
    run = _copy_run(trained, tmp_path)
    best = run / "checkpoints" / "best.ckpt"
    best.write_bytes(damage(best.read_bytes()))
    with pytest.raises(UntrustedInputError, match=rf"checkpoint .*best.ckpt {message}"):
        load_run(run)
    with pytest.raises(UntrustedInputError, match=rf"ckpt_path=.*best.ckpt: checkpoint .* {message}"):
        train(tiny_run_cfg("demo_faces", f"ckpt_path={best}", name="resumed"))


def test_checkpoint_holds_every_weight_once_and_old_ones_still_load(trained: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(trained / "checkpoints" / "best.ckpt")
    run = load_run(trained)
    assert sorted(checkpoint["state_dict"]) == sorted(f"net.{key}" for key in run.model.state_dict())
    # Checkpoints written before held the network twice, as net.* and _forward.*; they still load.
    legacy = tmp_path / "legacy.ckpt"
    state = checkpoint["state_dict"]
    torch.save(checkpoint | {"state_dict": state | {f"_forward.{k[4:]}": v for k, v in state.items()}}, legacy)
    module = ClassifierModule(run.model, torch.optim.SGD, None, run.class_names)
    check_resume_checkpoint(str(legacy), module)
    loaded = load_checkpoint(legacy)
    module.on_load_checkpoint(loaded)  # what Lightning calls before its strict load_state_dict
    module.load_state_dict(loaded["state_dict"], strict=True)


def test_compiled_network_is_registered_once() -> None:
    from convlens.models import FerCNN

    module = ClassifierModule(
        FerCNN(7, 1, widths=(8, 16, 32, 64)), torch.optim.SGD, None, list("abcdefg"), compile=True
    )
    assert all(key.startswith("net.") for key in module.state_dict())


# --- 2. A run directory's config builds convlens classes only ----------------------------------------------------


@pytest.mark.parametrize("node", ["model", "data", "data.source"])
@pytest.mark.parametrize(
    ("target", "arguments"),
    [("builtins.open", {"mode": "w"}), ("convlens.atomic.write_text", {"text": "import os"})],  # a convlens function
)
def test_run_config_may_not_build_other_classes(
    trained: Path, tmp_path: Path, node: str, target: str, arguments: dict
) -> None:
    run = _copy_run(trained, tmp_path)
    created = tmp_path / "created-by-config"
    config = OmegaConf.load(run / "config.yaml")
    path = {"file": str(created)} if target == "builtins.open" else {"path": str(created)}
    attack = {"_target_": target, **path, **arguments}
    kept = {"num_classes": config.data.num_classes} if node == "data" else {}  # else read_config refuses it first
    OmegaConf.update(config, node, attack | kept, merge=False)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(config))
    with pytest.raises(UntrustedInputError, match=rf"{node}._target_='{target}' is not allowed here"):
        load_run(run)
    if node == "model":
        with pytest.raises(UntrustedInputError, match=rf"model._target_='{target}' is not allowed"):
            model_rows(config.model, 1, 48)
    assert not created.exists()


def test_a_run_config_this_version_cannot_build_names_the_file_and_the_fix(trained: Path, tmp_path: Path) -> None:
    """As a run made before a model argument was renamed (ResNet's ``width`` became ``width_factor``)."""
    run = _copy_run(trained, tmp_path)
    config = OmegaConf.load(run / "config.yaml")
    OmegaConf.update(config, "model.width", 0.5, force_add=True)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(config))
    with pytest.raises(RunDirError) as refused:
        load_run(run)
    message = str(refused.value)
    assert str(run / "config.yaml") in message and "'model'" in message and "width" in message
    assert f"make train EXPERIMENT={config.experiment_name}" in message


def test_best_checkpoint_path_may_not_leave_the_run(trained: Path, tmp_path: Path) -> None:
    run = _copy_run(trained, tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps(metrics | {"best_checkpoint": "../../elsewhere.ckpt"}))
    with pytest.raises(UntrustedInputError, match=r"points outside"):
        load_run(run)


# --- 4. Every run gets its own directory --------------------------------------------------------------------------


def _claim(args: tuple[Path, datetime]) -> str:
    return create_run_dir(*args).name


def test_runs_started_in_the_same_second_get_different_directories(tmp_path: Path) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        names = pool.map(_claim, [(tmp_path, moment)] * 8)
    assert sorted(names) == sorted(["2026-01-02_03-04-05", *(f"2026-01-02_03-04-05-{n}" for n in range(2, 9))])


# --- 6. `latest` names a finished run; a run that fails before training leaves nothing ---------------------------


def test_failure_before_training_leaves_no_directory(tmp_path: Path) -> None:
    """Through the entry point, from an empty folder: Hydra writes nothing, the failed run nothing either."""
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=demo_faces", *TINY,
               "data.batch_size=100000"]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    assert "data.batch_size=100000 is larger than the training set of data 'faces' (256 images)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_latest_moves_only_when_a_run_finished(compose_train, tmp_path: Path, monkeypatch) -> None:
    outputs = tmp_path / "outputs"
    base = ["experiment=demo_faces", *TINY, f"paths.outputs_dir={outputs}"]
    with pytest.raises(ConfigError, match="data.batch_size=100000 is larger than the training set"):
        train(compose_train(*base, "data.batch_size=100000"))
    assert not outputs.exists(), "a run that fails before training leaves no directory"
    # Two runs started in the same second, and a third that is killed during training.
    frozen = datetime(2026, 1, 2, 3, 4, 5)
    monkeypatch.setattr("convlens.rundir.datetime", type("Clock", (), {"now": staticmethod(lambda: frozen)}))
    train(compose_train(*base))
    train(compose_train(*base, "seed=1"))
    with pytest.raises(KilledRun):
        train(compose_train(*base, *INTERRUPT, "trainer.max_epochs=2"))
    runs = outputs / "demo_faces"
    assert sorted(p.name for p in runs.iterdir()) == [
        "2026-01-02_03-04-05", "2026-01-02_03-04-05-2", "2026-01-02_03-04-05-3", "latest",
    ]  # fmt: skip
    assert "seed: 1\n" in (runs / "2026-01-02_03-04-05-2" / "config.yaml").read_text()
    assert (runs / "latest").readlink() == Path("2026-01-02_03-04-05-2")
    assert resolve_runs(None, "demo_faces", outputs) == [runs / "latest"]
    killed = runs / "2026-01-02_03-04-05-3"
    assert (killed / "checkpoints" / "last.ckpt").is_file() and not (killed / "metrics.json").exists()


def test_batch_size_larger_than_the_training_set_names_the_key(tiny_run_cfg) -> None:
    with pytest.raises(ConfigError, match=r"data.batch_size=300 is larger .*\(256 images\).*data.batch_size<=256"):
        train(tiny_run_cfg("demo_shapes", "data.batch_size=300"))


# --- 7. Resuming continues exactly as the uninterrupted run would ------------------------------------------------


def test_resumed_run_equals_the_uninterrupted_one(compose_train, tmp_path: Path, monkeypatch) -> None:
    """demo_faces (augmentation and dropout draw random numbers): 2 epochs at once, or killed at the start of
    the second epoch and resumed from its last checkpoint, give identical numbers on the CPU. The kill is
    not in the run's config (a real one leaves no trace there, and a resume must match the config)."""
    outputs = tmp_path / "outputs"
    base = ["experiment=demo_faces", *TINY, "trainer.max_epochs=2", f"paths.outputs_dir={outputs}"]
    uninterrupted = train(compose_train(*base, f"paths.output_dir={tmp_path / 'uninterrupted'}"))
    with monkeypatch.context() as patch, pytest.raises(KilledRun):
        patch.setattr("convlens.training.run.build_trainer", _killed_at_epoch(1))
        train(compose_train(*base))
    (killed,) = [path for path in (outputs / "demo_faces").iterdir() if path.name != "latest"]
    last = killed / "checkpoints" / "last.ckpt"
    checkpoint = load_checkpoint(last)
    (resume_state,) = [state for key, state in checkpoint["callbacks"].items() if key.startswith("ResumeState")]
    resume_state["train_seconds"] += 1000.0  # so that the total must include the part before the kill
    torch.save(checkpoint, last)
    resumed = train(compose_train(*base, f"ckpt_path={last}"))
    assert {key: resumed[key] for key in NUMBERS} == {key: uninterrupted[key] for key in NUMBERS}
    assert resumed["train_seconds"] > 1000.0, "train_seconds counts the part before the resume"
    assert json.loads((killed / "metrics.json").read_text()) == resumed, "the run continued in its own directory"
    assert (outputs / "demo_faces" / "latest").resolve() == killed.resolve()


def _killed_at_epoch(epoch: int):
    """``build_trainer`` with an :class:`InterruptAtEpoch` callback that the config does not name."""

    def build(cfg, precision: str, *callbacks: pl.Callback) -> pl.Trainer:
        return build_trainer(cfg, precision, *callbacks, InterruptAtEpoch(epoch))

    return build


# --- 11. Memory: test-time augmentation is batched by crops -------------------------------------------------------


def test_test_time_augmented_batches_hold_at_most_eval_batch_size_crops(compose_train) -> None:
    cfg = compose_train("experiment=demo_faces", *TINY, "data.test_time_augmentation=ten_crop",
                        "data.eval_batch_size=50", "paths.output_dir=unused")  # fmt: skip
    datamodule = instantiate(cfg.data, on_device=False)
    datamodule.prepare()
    for images, _ in datamodule.test_dataloader():
        views = datamodule.transform.views(images, "ten_crop")
        assert views.shape[0] * views.shape[1] <= 50
    assert len(datamodule.test_dataloader()) == 20  # 96 images, 5 per batch


def test_peak_memory_of_a_small_ten_crop_run(tmp_path: Path) -> None:
    """Ten-crop test at eval_batch_size=256 on 256 test images, through a FerCNN whose first stage is the
    recipe's (64 channels at 48x48, where the activations are) and whose other stages are narrow (fast):
    when crops did not count towards the batch, one forward pass held 2,560 crops and the run peaked at
    3.9 GB RSS; with 256 crops per pass it peaked at 1.2 GB (both measured on the 2-core CPU)."""
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=demo_faces", *TINY,
               "model.widths=[64,16,16,16]", "model.convs_per_stage=1", "data.source.test_size=256",
               "data.eval_batch_size=256", "data.test_time_augmentation=ten_crop", "trainer.limit_train_batches=1",
               "trainer.limit_val_batches=1", f"paths.outputs_dir={tmp_path / 'outputs'}"]  # fmt: skip
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        launched = subprocess.run([sys.executable, "-c", PEAK_LAUNCHER, *command], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=stderr, text=True)  # fmt: skip
    assert launched.returncode == 0, log.read_text()[-3000:]
    peak_mb = int(launched.stdout.split()[-1]) / 1024  # kilobytes on Linux
    assert peak_mb < PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


#: Runs the command and prints its peak RSS. Linux keeps a process's peak across fork and exec, so a child
#: forked straight from pytest reports pytest's own size (3.8 GB late in a full run); forked from this small
#: launcher, it reports its own.
PEAK_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


#: Between the two measured peaks of the run above (3.9 GB before, 1.2 GB after).
PEAK_LIMIT_MB = 2000


def test_an_unknown_experiment_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"unknown experiment 'demo_shapez'.*experiments: .*demo_shapes"):
        resolve_runs(None, "demo_shapez", tmp_path)
    with pytest.raises(RunDirError, match=r"no trained run of experiment 'demo_shapes'.*EXPERIMENT=demo_shapes"):
        resolve_runs(None, "demo_shapes", tmp_path)
