"""The generate stage (``make generate``): train a run's generator prior and keep it in ``<run>/generator/``.

For each run directory: load the best checkpoint as the fixed encoder, encode the training and test
images, train the generator and the code prior (:mod:`convlens.generator.training`), measure the
held-out reconstruction error, and write the folder (:mod:`convlens.generator.store`) under a
temporary name, swapped in when complete (the start-up and ending are :mod:`convlens.stage`'s).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from convlens import atomic
from convlens.explain.realism import REALISM_LAYER, channel_means
from convlens.figures.generator import generator_losses_figure
from convlens.generate.schema import GenerateConfig, check
from convlens.generator import store
from convlens.generator.encoding import CodeStatistics, ImageSpace, code_shape, encode_images, penultimate_layer
from convlens.generator.training import Encoded, reconstruction_errors, train_denoiser, train_generator
from convlens.lineage import MADE_FROM
from convlens.models.layers import resolve_layer
from convlens.rundir import GENERATOR, TrainedRun
from convlens.stage import OpenedRun, Stage

log = logging.getLogger(__name__)


def generate_body(opened: OpenedRun, settings: GenerateConfig) -> dict[str, Any]:
    """The stage's body for one run directory (:mod:`convlens.stage` does the rest); returns its metrics."""
    # Trained weights hold denormal floats, which x86 CPUs process ~15x slower (as in training).
    torch.set_flush_denormal(True)
    model = opened.model
    code_layer = settings.code_layer or penultimate_layer(model)
    resolve_layer(model, code_layer)
    trained = _train(opened.trained, model, code_layer, settings)
    metrics = trained.pop("metrics") | {"seconds": opened.seconds(), MADE_FROM: opened.made_from}
    _write(opened, trained, metrics)
    log.info("%s: generator trained in %.1f s; held-out reconstruction MSE %.4f (mean image %.4f) -> %s",
             opened.label, metrics["seconds"], metrics["heldout_reconstruction_mse"], metrics["mean_image_mse"],
             opened.root / GENERATOR)  # fmt: skip
    return metrics


STAGE = Stage("generate", GENERATOR, generate_body)


def generate(cfg: DictConfig | GenerateConfig) -> list[dict[str, Any]]:
    """``make generate``: the runs named by ``run``/``experiment`` (default: every latest run)."""
    return STAGE.run(_settings(cfg))


def generate_run(run_dir: str | Path, cfg: DictConfig | GenerateConfig) -> dict[str, Any]:
    """The stage for one run directory; returns the metrics it wrote."""
    return STAGE.run_one(run_dir, _settings(cfg))


def _settings(cfg: DictConfig | GenerateConfig) -> GenerateConfig:
    settings = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
    check(settings)
    return settings


def _train(run: TrainedRun, model: torch.nn.Module, code_layer: str, settings: GenerateConfig) -> dict[str, Any]:
    """Encode the data, train both networks, measure them: everything the folder holds."""
    data_config = run.config.data
    space = ImageSpace(tuple(data_config.mean), tuple(data_config.std), int(data_config.image_size))
    train_images = run.datamodule.split("train").images[: settings.train_images]
    test = run.datamodule.split("test")
    test_images, test_labels = test.images[: settings.heldout_images], test.labels[: settings.heldout_images]
    phases: dict[str, float] = {}
    with _timed(phases, "encode"):
        train_codes = encode_images(model, [code_layer], train_images, space)[code_layer]
        test_codes = encode_images(model, [code_layer], test_images, space)[code_layer]
        heldout = encode_images(model, [REALISM_LAYER], test_images, space, channel_means)[REALISM_LAYER]
    statistics = CodeStatistics.of(train_codes)
    shape = code_shape(model, code_layer, train_images[0], space)
    data = Encoded(train_images, train_codes, code_layer, statistics, shape)
    with _timed(phases, "generator"):
        generator, losses = train_generator(model, data, space, settings.generator, settings.seed)
    with _timed(phases, "prior"):
        denoiser, prior_losses = train_denoiser(statistics.standardize(data.codes), settings.prior, settings.seed + 1)
    heldout_z = statistics.standardize(test_codes)
    metrics = reconstruction_errors(generator, heldout_z, test_images, _mean_image(train_images))
    config = store.architecture(generator, denoiser) | {
        "code_layer": code_layer, "feature_layer": REALISM_LAYER, "mean": list(space.mean), "std": list(space.std),
        "image_size": space.image_size, "seed": settings.seed, "train_images": len(train_images),
        "generator_settings": dataclasses.asdict(settings.generator),
        "prior_settings": dataclasses.asdict(settings.prior),
    }  # fmt: skip
    tensors = statistics.as_dict() | {"heldout": heldout, "heldout_labels": test_labels.long()}
    return {"config": config, "generator": generator, "denoiser": denoiser, "statistics": tensors,
            "losses": losses | prior_losses, "metrics": metrics | {"phase_seconds": phases}}  # fmt: skip


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Record the block's wall time under ``phases[name]``."""
    started = time.perf_counter()
    yield
    phases[name] = round(time.perf_counter() - started, 2)


def _mean_image(images: torch.Tensor) -> torch.Tensor:
    """The mean (C, H, W) in [0, 1] of uint8 ``images``, summed in chunks (CIFAR-10 as floats is 0.5 GB)."""
    total = sum(part.to(torch.float64).sum(0) for part in images.split(1000))
    return (total / (255 * len(images))).float().cpu()


def _write(opened: OpenedRun, trained: dict[str, Any], metrics: dict[str, Any]) -> None:
    with opened.staged() as staging:
        atomic.write_json(staging / store.CONFIG, trained["config"])
        torch.save(_cpu(trained["generator"].state_dict()), staging / store.GENERATOR)
        torch.save(_cpu(trained["denoiser"].state_dict()), staging / store.DENOISER)
        torch.save(_cpu(trained["statistics"]), staging / store.STATISTICS)
        atomic.write_json(staging / store.LOSSES, trained["losses"])
        atomic.save_figure(generator_losses_figure(trained["losses"]), staging / store.LOSS_CURVE, dpi=100)
        atomic.write_json(staging / store.METRICS, metrics)


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
