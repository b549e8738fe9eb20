"""The visualize stage: explain a trained run with the registered methods.

For each run directory: load the best checkpoint, choose test images (per class a correct and a
wrong example), run every planned method batched on the model's device, and write
``visualizations/<method>/*.png`` and ``visualizations/manifest.json`` (one entry per figure, with
the settings each method used and the time each figure took). The folder is built under a
temporary name and swapped in when complete, so a failed or killed stage leaves the previous
visualizations intact. A run of some methods (``methods=[...]``) keeps the other methods' figures
when they were drawn from the same checkpoint, config and images (:mod:`convlens.visualize.keep`).
The stage's time goes into ``provenance.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from convlens import atomic
from convlens.lineage import MADE_FROM
from convlens.registry import METHODS
from convlens.run_files import read_confusion
from convlens.rundir import CONFUSION_CSV, DEFAULT_SPLIT, MANIFEST_NAME, VISUALIZATIONS
from convlens.stage import OpenedRun, Stage
from convlens.visualize.comparison import write_comparison
from convlens.visualize.context import Context, choose_images
from convlens.visualize.keep import copy_kept, kept_methods
from convlens.visualize.methods import MethodResult, Planned, plan
from convlens.visualize.pool import run_methods

log = logging.getLogger(__name__)


def visualize_body(opened: OpenedRun, cfg: DictConfig) -> dict[str, Any]:
    """The stage's body for one run directory (:mod:`convlens.stage` does the rest); returns the manifest."""
    ctx, planned = prepare(opened, cfg)
    selection = OmegaConf.to_container(cfg.selection, resolve=True)
    kept = kept_methods(opened.root, list(planned), opened.made_from, selection) if cfg.methods is not None else {}
    with opened.staged() as out_dir:
        copy_kept(opened.root, kept, out_dir)
        results = in_registry_order(run_methods(ctx, planned, out_dir, cfg.workers), kept)
        parameters = {name: planned[name].parameters() if name in planned else kept[name][1] for name in results}
        comparison = write_comparison(ctx, results, out_dir)
        manifest = {
            "run": opened.label,
            "seconds_total": opened.seconds(),
            "device": str(ctx.device),
            "split": cfg.selection.split,
            "images": len(ctx.chosen),
            "selection": selection,
            "methods": {name: result.summary(parameters[name]) for name, result in results.items()},
            "entries": [entry for result in results.values() for entry in result.entries],
            **({"comparison": comparison} if comparison else {}),
            MADE_FROM: opened.made_from,
        }
        atomic.write_json(out_dir / MANIFEST_NAME, manifest)
    log.info("%s: %d figures in %.1f s -> %s", manifest["run"], len(manifest["entries"]), manifest["seconds_total"],
             opened.root / VISUALIZATIONS)  # fmt: skip
    return manifest


def test_confusion(opened: OpenedRun, selection: DictConfig) -> torch.Tensor | None:
    """The run's test confusion matrix, whose most frequent pairs the confused-pair figures show (the pairs the
    report's table and Findings name), where the images come from the test split and the run has one; read as
    untrusted input and recorded in the manifest's lineage."""
    if selection.split != DEFAULT_SPLIT or not selection.confused_pairs or not (opened.root / CONFUSION_CSV).is_file():
        return None
    opened.reading(CONFUSION_CSV)
    counts = read_confusion(opened.root, opened.trained.class_names)
    return None if counts is None else torch.from_numpy(counts)


STAGE = Stage("visualize", VISUALIZATIONS, visualize_body)


def visualize(cfg: DictConfig) -> list[dict[str, Any]]:
    """``make visualize``: the runs named by ``run``/``experiment`` (default: every latest run)."""
    return STAGE.run(cfg)


def visualize_run(run_dir: str | Path, cfg: DictConfig) -> dict[str, Any]:
    """The stage for one run directory; returns the manifest it wrote."""
    return STAGE.run_one(run_dir, cfg)


def in_registry_order(
    results: dict[str, MethodResult], kept: dict[str, tuple[MethodResult, dict[str, Any]]]
) -> dict[str, MethodResult]:
    """The methods drawn now (in the order asked for) or, with some kept from before, all of them in the
    registry's order (the report's)."""
    if not kept:
        return results
    every = results | {name: result for name, (result, _) in kept.items()}
    return {name: every[name] for name in METHODS if name in every}


def prepare(opened: OpenedRun, cfg: DictConfig) -> tuple[Context, dict[str, Planned]]:
    """The checked plan and the chosen images, for the model the kernel loaded and adapted."""
    planned = plan(None if cfg.methods is None else list(cfg.methods), cfg.params, opened.model)
    chosen = choose_images(opened.trained, opened.model, cfg.selection, test_confusion(opened, cfg.selection))
    return Context(opened.trained, opened.model, chosen, opened.device, opened.trained.black_image()), planned
