"""The visualize stage: explain a trained run with the registered methods.

For each run directory: load the best checkpoint, choose test images (per class a correct and a
wrong example), run every planned method batched on the model's device, and write
``visualizations/<method>/*.png`` and ``visualizations/manifest.json`` (one entry per figure, with
the settings each method used and the time each figure took). The folder is built under a
temporary name and swapped in when complete, so a failed or killed stage leaves the previous
visualizations intact. The stage's time goes into ``provenance.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from convlens import atomic, provenance
from convlens.hardware import resolve_device
from convlens.models.conventions import adapt
from convlens.rundir import TrainedRun, load_run, resolve_runs
from convlens.visualize.comparison import write_comparison
from convlens.visualize.context import Context, black_image, choose_images
from convlens.visualize.methods import Planned, plan
from convlens.visualize.pool import run_methods

log = logging.getLogger(__name__)

VISUALIZATIONS = "visualizations"
MANIFEST = "manifest.json"


def visualize(cfg: DictConfig) -> list[dict[str, Any]]:
    """``make visualize``: the runs named by ``run``/``experiment`` (default: every latest run)."""
    runs = resolve_runs(cfg.run, cfg.experiment, Path(cfg.outputs_dir))
    return [visualize_run(run_dir, cfg) for run_dir in runs]


def visualize_run(run_dir: str | Path, cfg: DictConfig) -> dict[str, Any]:
    """The stage for one run directory; returns the manifest it wrote."""
    started = time.perf_counter()
    with torch_threads(cfg.threads):
        run = load_run(run_dir)
        ctx, planned = prepare(run, cfg)
        with atomic.staged_folder(Path(run.root) / VISUALIZATIONS) as out_dir:
            results = run_methods(ctx, planned, out_dir, cfg.workers or 1)
            comparison = write_comparison(ctx, results, out_dir)
            manifest = {
                "run": run_name(run),
                "seconds_total": round(time.perf_counter() - started, 2),
                "device": str(ctx.device),
                "images": len(ctx.chosen),
                "methods": {name: result.summary(planned[name].parameters()) for name, result in results.items()},
                "entries": [entry for result in results.values() for entry in result.entries],
                **({"comparison": comparison} if comparison else {}),
            }
            atomic.write_json(out_dir / MANIFEST, manifest)
    provenance.record_stage(run.root, "visualize", manifest["seconds_total"])
    log.info("%s: %d figures in %.1f s -> %s", manifest["run"], len(manifest["entries"]), manifest["seconds_total"],
             Path(run.root) / VISUALIZATIONS)  # fmt: skip
    return manifest


def prepare(run: TrainedRun, cfg: DictConfig) -> tuple[Context, dict[str, Planned]]:
    """The model on its device (channels-last if configured) and adapted to the model conventions
    (a no-op for convlens models; what changed is logged), the checked plan and the chosen images."""
    device = resolve_device(cfg.device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = adapt(run.model.eval()).to(device=device, memory_format=memory_format).eval()
    planned = plan(None if cfg.methods is None else list(cfg.methods), cfg.params, model)
    chosen = choose_images(run, model, cfg.selection)
    return Context(run, model, chosen, device, black_image(run)), planned


def run_name(run: TrainedRun) -> str:
    """``<experiment>/<time>``: the run without any machine-specific prefix."""
    resolved = Path(run.root).resolve()
    return f"{resolved.parent.name}/{resolved.name}"


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch CPU threads (None: leave as is), restoring the previous count."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
