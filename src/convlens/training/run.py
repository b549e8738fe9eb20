"""The train stage: config -> data -> model -> run directory (checkpoints, events, metrics).

The run directory is created only once everything is built (a run that fails before training leaves
none), under a name no other run holds; ``latest`` points at it only once its metrics are written.
Every file the stage writes itself is written atomically (:mod:`convlens.atomic`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from convlens import atomic, provenance
from convlens.config import check_data_fits, validate
from convlens.data import ImageDataModule
from convlens.figures.confusion import confusion_matrix_figure
from convlens.rundir import (
    BEST_CHECKPOINT,
    CLASS_NAMES,
    CONFIG,
    CONFUSION_CSV,
    CONFUSION_PNG,
    LAST_CHECKPOINT,
    METRICS,
    TRAIN_LOG,
    check_shapes,
    point_latest,
)
from convlens.stage import record_time
from convlens.training import ranks
from convlens.training.clean_accuracy import clean_train_accuracy
from convlens.training.console import progress_bar_shown, quiet_third_party
from convlens.training.finite import FiniteTraining
from convlens.training.lifecycle import logging_to, make_run_dir, removed_on_error, torch_flags_kept
from convlens.training.module import BALANCED_METRICS, ClassifierModule, class_accuracy_key, confusion_key
from convlens.training.precision import cpu_precision
from convlens.training.resume import ResumeState
from convlens.training.resume_check import check_resume
from convlens.untrusted import UntrustedInputError, load_checkpoint

log = logging.getLogger(__name__)

#: The stage's key in provenance.json.
STAGE = "train"


def resolve_precision(
    precision: str, accelerator: str, net: nn.Module, input_chw: tuple[int, int, int]
) -> tuple[str, dict[str, Any] | None]:
    """'auto': bf16 mixed precision on a bf16-capable GPU; on the CPU whichever of fp32 and bf16 a short
    probe of ``net``'s own convolutions measured faster (:mod:`convlens.training.precision`), with the
    probe's record (None when nothing was measured)."""
    if precision != "auto":
        return precision, None
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return ("bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"), None
    record = cpu_precision(net, input_chw)
    log.info("trainer.precision=auto on %s: %s (probe: %s)", record.get("cpu", "this CPU"), record["choice"], record)
    return record["choice"], record


def input_chw(cfg: DictConfig) -> tuple[int, int, int]:
    return cfg.data.channels, cfg.data.image_size, cfg.data.image_size


def build_module(cfg: DictConfig, class_names: list[str]) -> ClassifierModule:
    module = OmegaConf.to_container(cfg.module, resolve=True)
    return ClassifierModule(
        net=instantiate(cfg.model),
        optimizer=instantiate(cfg.optimizer, _convert_="all"),
        scheduler=instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None,
        class_names=class_names,
        **module,
    )


def check_resume_checkpoint(ckpt_path: str | None, module: ClassifierModule) -> None:
    """Refuse a checkpoint that is unreadable, holds code, or was made for another model, before training."""
    if ckpt_path is None:
        return
    try:
        state = load_checkpoint(ckpt_path)["state_dict"]
    except UntrustedInputError as error:
        raise UntrustedInputError(f"ckpt_path={ckpt_path}: {error}") from error
    check_shapes(module.state_dict(), state, Path(ckpt_path))


def build_trainer(cfg: DictConfig, precision: str, *extra_callbacks: pl.Callback) -> pl.Trainer:
    callbacks = [instantiate(node) for node in (cfg.callbacks or {}).values()]
    loggers = [instantiate(node) for node in (cfg.logger or {}).values()]
    return instantiate(
        cfg.trainer,
        callbacks=[*callbacks, *extra_callbacks],
        logger=loggers,
        precision=precision,
        enable_progress_bar=progress_bar_shown(cfg.trainer.enable_progress_bar),
    )


def write_header(run_dir: Path, cfg: DictConfig, datamodule: ImageDataModule) -> None:
    """What later stages need before training ends: resolved config, class names, provenance."""
    atomic.write_text(run_dir / CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
    atomic.write_text(run_dir / CLASS_NAMES, json.dumps(datamodule.class_names) + "\n")
    provenance.write(run_dir, provenance.describe_run(cfg.seed, datamodule.files))


def _scalar(metrics: dict[str, Any], key: str) -> float | None:
    """A metric rounded for metrics.json; None when absent or undefined (NaN: JSON has no such number)."""
    value = metrics.get(key)
    return None if value is None or not math.isfinite(float(value)) else round(float(value), 6)


def evaluate_best(trainer: pl.Trainer, module: ClassifierModule, datamodule: ImageDataModule, run_test: bool) -> dict:
    """Validation (and test) numbers of the best checkpoint; the test's per-class numbers stay in
    ``trainer.callback_metrics``."""
    checkpoint = "best" if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path else None
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False, weights_only=True)[0]
    results = {"val": {"loss": _scalar(val, "val/loss"), "acc": _scalar(val, "val/acc")}}
    if run_test:
        trainer.test(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False, weights_only=True)
        test = trainer.callback_metrics
        results["test"] = {"loss": _scalar(test, "test/loss"), "acc": _scalar(test, "test/acc")}
        results["test"] |= {name: _scalar(test, f"test/{name}") for name in BALANCED_METRICS}
    return results


def write_test_results(run_dir: Path, metrics: dict[str, torch.Tensor], class_names: list[str]) -> dict[str, float]:
    """The test confusion matrix (csv, png) from ``callback_metrics``; returns the per-class accuracy."""
    labels = range(len(class_names))
    confusion = np.array([[round(float(metrics[confusion_key(t, p)])) for p in labels] for t in labels], np.int64)
    header = "true\\predicted," + ",".join(class_names)
    rows = [f"{name}," + ",".join(str(v) for v in row) for name, row in zip(class_names, confusion, strict=True)]
    atomic.write_text(run_dir / CONFUSION_CSV, "\n".join([header, *rows]) + "\n")
    figure = confusion_matrix_figure(confusion, class_names, "Test confusion matrix")
    atomic.save_figure(figure, run_dir / CONFUSION_PNG, dpi=120)
    return {name: _scalar(metrics, class_accuracy_key(label)) for label, name in enumerate(class_names)}


def best_epoch(run_dir: Path) -> int | None:
    path = run_dir / BEST_CHECKPOINT
    return load_checkpoint(path)["epoch"] if path.exists() else None


def train(cfg: DictConfig) -> dict[str, Any] | None:
    """Train, evaluate the best checkpoint and write the run directory; returns metrics.json's content
    (None in the other processes of a DDP run, which write nothing)."""
    validate(cfg)
    resume = check_resume(cfg)  # before anything is built or written
    quiet_third_party()
    started, code = time.perf_counter(), provenance.git_state()  # the code this process loaded, not a later commit's
    # Tiny weights (zero-initialized residual BN scales under weight decay) turn into denormal floats,
    # which x86 CPUs process ~15x slower: flush them to zero (no effect on GPUs, none on accuracy).
    torch.set_flush_denormal(True)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule: ImageDataModule = instantiate(cfg.data)
    datamodule.prepare()
    check_data_fits(cfg, len(datamodule.split("train")))
    module = build_module(cfg, datamodule.class_names)
    check_resume_checkpoint(cfg.ckpt_path, module)
    if not ranks.is_first_process():
        _follow(cfg, module, datamodule)
        return None
    precision, probe = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator, module.net, input_chw(cfg))
    run_dir, created = make_run_dir(cfg)
    ranks.hand_off(run_dir, precision)
    with logging_to(run_dir / TRAIN_LOG), torch_flags_kept():
        clock = ResumeState()
        with removed_on_error(run_dir, created):
            trainer = build_trainer(cfg, precision, clock, FiniteTraining(cfg.optimizer.get("lr")))
            if resume is None:  # a resumed run keeps the header it was started with
                write_header(run_dir, cfg, datamodule)
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        metrics = _metrics(cfg, run_dir, trainer, module, datamodule, clock.train_seconds, probe)
        atomic.write_json(run_dir / METRICS, metrics)
        if resume is not None:
            resume.record()
        record_time(run_dir, STAGE, time.perf_counter() - started, code)
        log.info(
            "%s: val acc %.4f, test acc %s, %d epochs trained in %.1f s -> %s",
            cfg.experiment_name, metrics["val"]["acc"], _four_places((metrics.get("test") or {}).get("acc")),
            metrics["epochs"], metrics["train_seconds"], run_dir,
        )  # fmt: skip
    if cfg.paths.latest:
        point_latest(run_dir)
    return metrics


def _four_places(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _follow(cfg: DictConfig, module: ClassifierModule, datamodule: ImageDataModule) -> None:
    """A DDP process other than the first: trains and evaluates its shard with the others, in the first
    process's run directory and precision; Lightning writes checkpoints and events from rank 0 only."""
    handoff = ranks.inherited()
    if handoff is None:
        run_dir = ranks.follower_run_dir(cfg.paths.output_dir)
        precision, _ = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator, module.net, input_chw(cfg))
    else:
        run_dir, precision = handoff.run_dir, handoff.precision
    cfg.paths.output_dir = str(run_dir)
    trainer = build_trainer(cfg, precision, ResumeState(), FiniteTraining(cfg.optimizer.get("lr")))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    evaluate_best(trainer, module, datamodule, cfg.run_test)


def _metrics(
    cfg: DictConfig,
    run_dir: Path,
    trainer: pl.Trainer,
    module: ClassifierModule,
    datamodule: ImageDataModule,
    train_seconds: float,
    precision_probe: dict[str, Any] | None,
) -> dict[str, Any]:
    """metrics.json: the final training numbers, the best checkpoint's val/test numbers and its accuracy on
    un-augmented training images (``train_clean``)."""
    train_metrics = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    results = evaluate_best(trainer, module, datamodule, cfg.run_test)
    per_class = write_test_results(run_dir, trainer.callback_metrics, datamodule.class_names) if cfg.run_test else None
    return {
        "experiment": cfg.experiment_name,
        "model": _model_name(cfg),
        "parameters": sum(p.numel() for p in module.net.parameters()),
        "data": datamodule.describe(),
        "precision": trainer.precision,
        "precision_probe": precision_probe,
        "processes": trainer.world_size,
        "epochs": trainer.current_epoch,
        "best_epoch": best_epoch(run_dir),
        "train": {"loss": _scalar(train_metrics, "train/loss"), "acc": _scalar(train_metrics, "train/acc")},
        "train_clean": clean_train_accuracy(trainer, module, datamodule, cfg.seed),
        **results,
        "per_class_accuracy": per_class,
        "train_seconds": round(train_seconds, 2),
        "best_checkpoint": str(BEST_CHECKPOINT) if (run_dir / BEST_CHECKPOINT).exists() else None,
        "last_checkpoint": str(LAST_CHECKPOINT) if (run_dir / LAST_CHECKPOINT).exists() else None,
    }


def _model_name(cfg: DictConfig) -> str:
    """The model as the report names it: class, depth and, when not the paper's, the width factor."""
    name = cfg.model._target_.rsplit(".", 1)[-1]
    name = f"{name}-{cfg.model.depth}" if "depth" in cfg.model else name
    width = cfg.model.get("width_factor", 1)
    return name if width == 1 else f"{name} at {width:g} of the paper's width"
