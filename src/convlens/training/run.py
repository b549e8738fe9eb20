"""The train stage: config -> data -> model -> run directory (checkpoints, events, metrics)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from convlens import provenance
from convlens.config import validate
from convlens.data import ImageDataModule
from convlens.figures.confusion import confusion_matrix_figure
from convlens.rundir import BEST_CHECKPOINT, CLASS_NAMES, CONFIG, METRICS, check_shapes, point_latest
from convlens.training.module import ClassifierModule

log = logging.getLogger(__name__)


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later). Only there do bf16 matmuls
    beat fp32 (2.4-3.2x in benchmarks/precision_layout.py); without AMX they are several times slower."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private API: absent means unknown, so no
    return bool(probe is not None and probe())


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """'auto': bf16 mixed precision where the hardware runs it faster than fp32, i.e. on a
    bf16-capable GPU or on an AMX CPU; fp32 everywhere else."""
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_amx() else "32-true"


def build_module(cfg: DictConfig, class_names: list[str]) -> ClassifierModule:
    settings = OmegaConf.to_container(cfg.module, resolve=True, enum_to_str=True)
    return ClassifierModule(
        net=instantiate(cfg.model),
        optimizer=settings["optimizer"],
        scheduler=settings["scheduler"],
        class_names=class_names,
        label_smoothing=settings["label_smoothing"],
        channels_last=settings["channels_last"],
        compile=settings["compile"],
        batched_weight_grad=settings["batched_weight_grad"],
    )


def check_resume_checkpoint(ckpt_path: str | None, module: ClassifierModule) -> None:
    if ckpt_path is None:
        return
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist; pass <run>/checkpoints/last.ckpt of a run")
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    check_shapes(module.state_dict(), state, path)


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    callbacks = [instantiate(node) for node in (cfg.callbacks or {}).values()]
    loggers = [instantiate(node) for node in (cfg.logger or {}).values()]
    precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, precision=precision)


def write_header(run_dir: Path, cfg: DictConfig, datamodule: ImageDataModule) -> None:
    """What later stages need before training ends: resolved config, class names, provenance."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / CLASS_NAMES).write_text(json.dumps(datamodule.class_names) + "\n")
    provenance.write(run_dir, provenance.describe_run(cfg.seed, datamodule.files))
    point_latest(run_dir)


def _scalar(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else round(float(value), 6)


def evaluate_best(trainer: pl.Trainer, module: ClassifierModule, datamodule: ImageDataModule, run_test: bool) -> dict:
    """Validation (and test) numbers of the best checkpoint, plus the test confusion matrix."""
    checkpoint = "best" if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path else None
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)[0]
    results = {"val": {"loss": _scalar(val, "val/loss"), "acc": _scalar(val, "val/acc")}}
    if run_test:
        test = trainer.test(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)[0]
        results["test"] = {"loss": _scalar(test, "test/loss"), "acc": _scalar(test, "test/acc")}
    return results


def write_test_results(run_dir: Path, module: ClassifierModule, class_names: list[str]) -> dict[str, float]:
    confusion = module.test_results["confusion"].numpy().astype(np.int64)
    header = "true\\predicted," + ",".join(class_names)
    rows = [f"{name}," + ",".join(str(v) for v in row) for name, row in zip(class_names, confusion, strict=True)]
    (run_dir / "confusion_matrix.csv").write_text("\n".join([header, *rows]) + "\n")
    figure = confusion_matrix_figure(confusion, class_names, "Test confusion matrix")
    figure.savefig(run_dir / "confusion_matrix.png", dpi=120)
    per_class = module.test_results["per_class_acc"].tolist()
    return {name: round(float(acc), 6) for name, acc in zip(class_names, per_class, strict=True)}


def best_epoch(run_dir: Path) -> int | None:
    path = run_dir / BEST_CHECKPOINT
    return torch.load(path, map_location="cpu", weights_only=False)["epoch"] if path.exists() else None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, evaluate the best checkpoint and write the run directory; returns metrics.json's content."""
    validate(cfg)
    started = time.perf_counter()
    # Tiny weights (zero-initialized residual BN scales under weight decay) turn into denormal floats,
    # which x86 CPUs process ~15x slower: flush them to zero (no effect on GPUs, none on accuracy).
    torch.set_flush_denormal(True)
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.output_dir)
    datamodule: ImageDataModule = instantiate(cfg.data)
    datamodule.prepare()
    module = build_module(cfg, datamodule.class_names)
    check_resume_checkpoint(cfg.ckpt_path, module)
    trainer = build_trainer(cfg)
    write_header(run_dir, cfg, datamodule)

    fit_started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    fit_seconds = time.perf_counter() - fit_started
    train_metrics = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    results = evaluate_best(trainer, module, datamodule, cfg.run_test)

    metrics = {
        "experiment": cfg.experiment_name,
        "model": _model_name(cfg),
        "parameters": sum(p.numel() for p in module.net.parameters()),
        "data": datamodule.describe(),
        "precision": trainer.precision,
        "epochs": trainer.current_epoch,
        "best_epoch": best_epoch(run_dir),
        "train": {"loss": _scalar(train_metrics, "train/loss"), "acc": _scalar(train_metrics, "train/acc")},
        **results,
        "per_class_accuracy": write_test_results(run_dir, module, datamodule.class_names) if cfg.run_test else None,
        "train_seconds": round(fit_seconds, 2),
        "best_checkpoint": str(BEST_CHECKPOINT) if (run_dir / BEST_CHECKPOINT).exists() else None,
        "last_checkpoint": "checkpoints/last.ckpt" if (run_dir / "checkpoints/last.ckpt").exists() else None,
    }
    (run_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    provenance.record_stage(run_dir, "train", time.perf_counter() - started)
    log.info(
        "%s: val acc %.4f, test acc %s, %d epochs trained in %.1f s -> %s",
        cfg.experiment_name, results["val"]["acc"], results.get("test", {}).get("acc"),
        metrics["epochs"], fit_seconds, run_dir,
    )  # fmt: skip
    return metrics


def _model_name(cfg: DictConfig) -> str:
    name = cfg.model._target_.rsplit(".", 1)[-1]
    return f"{name}-{cfg.model.depth}" if "depth" in cfg.model else name
