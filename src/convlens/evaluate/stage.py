"""The evaluate stage: how far can the run's maps be trusted?

For each run directory: load the best checkpoint, draw the evaluation's own stratified random sample
of the visualized split, compute on it the maps of every localising method the visualize stage ran,
with the settings it recorded (:mod:`convlens.evaluate.sample`; the figures' images are chosen for
teaching, not at random), score every method and layer with each family of metrics against its
baselines (:mod:`convlens.evaluate.families`), record where each map puts its mass per class and part of
the image where the data has parts (:mod:`convlens.evaluate.regions`), and write ``evaluation/evaluation.json`` and
``evaluation/cascade.png`` and ``evaluation/comparison.png`` (every method on the same sample images,
each at its best-supported layer). The folder is built under a temporary name and swapped in when complete;
the stage's time goes into ``provenance.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from convlens import atomic
from convlens.evaluate import families, verdicts
from convlens.evaluate.baselines import model_free_maps
from convlens.evaluate.best_layer import add_best_layers
from convlens.evaluate.comparison import Comparison, comparison
from convlens.evaluate.inputs import MethodMaps, read_manifest
from convlens.evaluate.localisation import BORDER_SHARE, border_band, peak_at_border
from convlens.evaluate.randomization import check_stages
from convlens.evaluate.regions import regions
from convlens.evaluate.sample import (
    SampleSettings,
    compute_maps,
    default_size,
    one_view_accuracy,
    planned_methods,
    sample_images,
)
from convlens.evaluate.schema import Settings, family_settings
from convlens.evaluate.scores import mean_of, score
from convlens.evaluate.similarity import ALIKE_MARGIN, alike_across_images, is_flat
from convlens.evaluation_registry import FAMILIES, FamilySpec
from convlens.explain.selection import explained_class
from convlens.figures.comparison import comparison_figure
from convlens.figures.parts import parts_figure
from convlens.forked import forked_map
from convlens.lineage import MADE_FROM
from convlens.registry import load, title
from convlens.rundir import (
    CASCADE_NAME,
    COMPARISON_NAME,
    DEFAULT_SPLIT,
    EVALUATION,
    EVALUATION_JSON,
    EVALUATION_NAME,
    MANIFEST_SETTINGS,
    PARTS_NAME,
)
from convlens.stage import OpenedRun, Stage

log = logging.getLogger(__name__)

#: The family whose figure the stage draws, with the payload its scoring returned.
Drawing = tuple[FamilySpec, Any]


def evaluate_body(opened: OpenedRun, cfg: DictConfig) -> dict[str, Any]:
    """The stage's body for one run directory (:mod:`convlens.stage` does the rest); returns the results."""
    settings = family_settings(cfg)
    opened.reading(MANIFEST_SETTINGS)  # the methods' settings only; the maps are computed afresh on the sample
    subject, missing = prepare(opened, cfg)
    check_stages(subject.model, settings.randomization.stages)
    results, cascade = score_all(subject, settings, cfg.workers)
    data = opened.trained.datamodule
    parts = regions(subject.images, subject.methods, data.part_names, data.parts_from, cfg.seed, cfg.workers)
    one_view = one_view_accuracy(opened.trained, opened.model, DEFAULT_SPLIT, opened.device)
    evaluation = {
        "run": opened.label,
        "device": str(subject.images.inputs.device),
        "images": [list(key) for key in subject.images.keys],
        "sample": sample_record(cfg, subject),
        "masks": subject.images.masks is not None,
        "border": border(subject.images.inputs),
        "settings": settings.as_dict(),
        **results,
        **({"regions": parts} if parts is not None else {}),
        **({"one_view": one_view} if one_view is not None else {}),
        "not_evaluated": missing,
        MADE_FROM: opened.made_from,
    }
    shown = comparison(subject, evaluation["methods"], opened.trained.class_names)
    drawn_parts = parts_drawing(subject, data.part_names, data.parts_from)
    with opened.staged() as out_dir:
        on_cpu = subject.images.inputs.device.type == "cpu"
        evaluation |= draw_figures(cascade, shown, drawn_parts, evaluation, out_dir, cfg.workers if on_cpu else 1)
        evaluation["seconds_total"] = opened.seconds()
        atomic.write_json(out_dir / EVALUATION_NAME, evaluation)
    log.info("%s: %d methods evaluated in %.1f s -> %s", evaluation["run"], len(evaluation["methods"]),
             evaluation["seconds_total"], opened.root / EVALUATION_JSON)  # fmt: skip
    return evaluation


STAGE = Stage("evaluate", EVALUATION, evaluate_body)


def evaluate(cfg: DictConfig) -> list[dict[str, Any]]:
    """``make evaluate``: the runs named by ``run``/``experiment`` (default: every latest run)."""
    family_settings(cfg)  # a bad setting is refused before any run is loaded
    sample_settings(cfg, torch.device("cpu"), classes=0)
    return STAGE.run(cfg)


def evaluate_run(run_dir: str | Path, cfg: DictConfig) -> dict[str, Any]:
    """The stage for one run directory; returns the results it wrote."""
    return STAGE.run_one(run_dir, cfg)


def prepare(opened: OpenedRun, cfg: DictConfig) -> tuple[families.Subject, dict[str, str]]:
    """The evaluation's sample with every chosen method's maps of it (on the device of the model the
    kernel loaded), and why the other localising methods are not evaluated."""
    run, device = opened.trained, opened.device
    manifest = read_manifest(opened.root)
    planned, missing = planned_methods(manifest, opened.root)
    if cfg.methods is not None:
        unknown = sorted(set(cfg.methods) - set(planned) - set(missing))
        if unknown:
            raise ValueError(f"evaluate.methods: no maps of {unknown}; methods with maps: {sorted(planned)}")
        left_out = f"left out by evaluate.methods={list(cfg.methods)} (without it every method with maps is scored)"
        missing |= dict.fromkeys((name for name in planned if name not in cfg.methods), left_out)
        planned = {name: parameters for name, parameters in planned.items() if name in cfg.methods}
    if not planned:
        raise ValueError(f"{run.root}: no method left maps to evaluate; rerun `make visualize RUN={run.root}`")
    settings = sample_settings(cfg, device, len(run.class_names))
    images = sample_images(run, opened.model, manifest.get("split", DEFAULT_SPLIT), settings, device)
    black = run.black_image().to(device)
    maps = compute_maps(opened.model, images, planned, black, len(run.class_names), settings.small, cfg.workers)
    subject = families.Subject(
        opened.model, images, maps, black, len(run.class_names), class_names=tuple(run.class_names)
    )
    return subject, missing


def sample_settings(cfg: DictConfig, device: torch.device, classes: int) -> SampleSettings:
    """The sample's checked settings (a bad value names its key), sized by ``device`` and the number of
    ``classes`` where not given (:func:`~convlens.evaluate.sample.default_size`); its nested prefixes are
    the image counts of the families that recompute maps."""
    images = default_size(device, classes) if cfg.images is None else cfg.images
    costly = images if cfg.costly_images is None else cfg.costly_images
    settings = family_settings(cfg)
    counts = [getattr(getattr(settings, name), "images", None) for name, spec in FAMILIES.items() if spec.recomputes]
    prefixes = tuple(count for count in counts if count is not None)
    explain = explained_class(cfg.explain, "evaluate.explain")
    return SampleSettings(images, min(costly, images), cfg.seed, explain, prefixes)


def sample_record(cfg: DictConfig, subject: families.Subject) -> dict[str, Any]:
    """How the sample was drawn, as ``evaluation.json`` states it."""
    settings = sample_settings(cfg, subject.images.inputs.device, subject.num_classes)
    return {
        "drawn": "at random, stratified by class, apart from the figures' images",
        "images": len(subject.images.keys), "costly_images": min(settings.small, len(subject.images.keys)),
        "seed": settings.seed, "explained": f"the {settings.explain} class",
        "map_seconds": {name: round(maps.seconds or 0.0, 2) for name, maps in subject.methods.items()},
    } | _true_classes(subject)  # fmt: skip


def _true_classes(subject: families.Subject) -> dict[str, list[int]]:
    """The sample's images per true class, where the labels are known (none: nothing to count)."""
    labels = subject.images.labels
    return {} if labels is None else {"true_classes": np.bincount(labels, minlength=subject.num_classes).tolist()}


def score_all(subject: families.Subject, settings: Settings, workers: int = 1) -> tuple[dict[str, Any], Drawing | None]:
    """Every registered family on every method: ``methods`` (per method its title, layers with each
    family's record and verdict, and the families that left it out), ``baselines`` and ``seconds`` per
    family, and ``multiple_testing`` (every test of the table adjusted together, :mod:`~convlens.evaluate.verdicts`);
    and the figure of the first family that returned a payload for its ``figure`` function; the
    families run in ``workers`` processes (:func:`run_families`)."""
    done, seconds = run_families(subject, settings, workers)
    figures = [
        (spec, done[name].figure) for name, spec in FAMILIES.items() if spec.figure and done[name].figure is not None
    ]
    drawing: Drawing | None = figures[0] if figures else None
    reference = _alike_reference(subject)
    methods = {name: _method_record(name, maps, done, subject, reference) for name, maps in subject.methods.items()}
    testing = verdicts.adjust_table(methods)
    verdicts.add_family_verdicts(methods)
    add_best_layers(methods)
    baselines = {name: family.baseline for name, family in done.items()}
    return {"methods": methods, "baselines": baselines, "multiple_testing": testing, "seconds": seconds}, drawing


def run_families(
    subject: families.Subject, settings: Settings, workers: int
) -> tuple[dict[str, families.Family], dict[str, float]]:
    """Every registered family on the subject, and the seconds each took (its parts' seconds summed).
    On a CPU the work shares out among ``workers`` forked processes of one torch thread each
    (:mod:`convlens.forked`: small batches gain more from a second process than from a second thread):
    the long-running families first, a family that recomputes maps as one task per method (the
    costliest part of the stage, now spread over the workers as they free up), a family of ``parts`` as one
    task per part (faithfulness: deletion and insertion, and ROAD), the others whole. Every
    family draws from its own seeds and a method's images do not depend on its task, so the scores do
    not depend on where they ran."""
    processes = workers if subject.images.inputs.device.type == "cpu" else 1
    order = sorted(FAMILIES, key=lambda name: not FAMILIES[name].long_running)
    tasks = [task for name in order for task in _tasks(name, list(subject.methods), processes)]
    timed = forked_map(lambda task: _timed_family(*task, subject, settings), tasks, processes)
    done, seconds = {}, {}
    for name in FAMILIES:
        parts = [part for (family, *_), part in zip(tasks, timed, strict=True) if family == name]
        done[name] = families.merged([family for family, _ in parts])
        seconds[name] = round(sum(took for _, took in parts), 2)
        log.info("%s: %.1f s", name, seconds[name])
    return done, seconds


def _tasks(name: str, methods: list[str], processes: int) -> list[tuple[str, str | None, str | None]]:
    """The family's tasks, (family, method, part): with several processes one per method of a family that
    recomputes maps, one per part of a family of parts; else the family whole."""
    spec = FAMILIES[name]
    if processes > 1 and spec.recomputes:
        return [(name, method, None) for method in methods]
    if processes > 1 and spec.parts:
        return [(name, None, part) for part in spec.parts]
    return [(name, None, None)]


def _timed_family(
    name: str, method: str | None, part: str | None, subject: families.Subject, settings: Settings
) -> tuple[families.Family, float]:  # fmt: skip
    started = time.perf_counter()
    family = families.run_family(FAMILIES[name], subject, getattr(settings, name), only=method, part=part)
    return family, round(time.perf_counter() - started, 2)


def _method_record(
    name: str,
    maps: MethodMaps,
    done: dict[str, families.Family],
    subject: families.Subject,
    reference: tuple[str, torch.Tensor],
) -> dict[str, Any]:
    kind, reference_maps = reference
    rows = subject.rows(maps)
    alike = {kind: alike_across_images(reference_maps[rows])}  # on the method's own images
    layers = {
        layer: {
            "flat": mean_of(is_flat(values).float()),
            "peak_at_border": mean_of(peak_at_border(values)),
            "alike_across_images": _alike(values, alike),
        }
        | {family: found.records[name][layer] for family, found in done.items() if name in found.records}
        for layer, values in maps.layers.items()
    }
    skipped = {family: found.skipped[name] for family, found in done.items() if name in found.skipped}
    return {"title": title(name), "images": len(maps.index), "layers": layers, "skipped": skipped}


def _alike(values: torch.Tensor, reference: dict[str, torch.Tensor]) -> dict[str, Any]:
    """How alike the maps are across images against ``reference`` (:func:`alike_across_images`), and
    whether they ``repeat`` a pattern of their own: the paired difference's whole 95% interval more alike
    than the objects' masks by over ``margin``. Against edge maps (no masks) it stays undecided (None): on
    aligned images (FER2013's roughly centred faces: saliency 0.52 against the edges' 0.21) maps may be alike
    because the evidence always lies in the same place, which only masks can tell apart from a pattern."""
    cell = score(alike_across_images(values), reference, "lower")
    high = cell["against"][cell["reference"]]["high"]
    repeats = None if cell["reference"] != "masks" else high is not None and high < -ALIKE_MARGIN
    return cell | {"margin": ALIKE_MARGIN, "repeats": repeats}


def _alike_reference(subject: families.Subject) -> tuple[str, torch.Tensor]:
    """The maps every method's are compared with in :func:`alike_across_images`, once per run: the objects'
    masks where the data has them (a map may repeat as far as the objects do), else the images' edge maps
    (as far as the images themselves repeat)."""
    masks = subject.images.masks
    if masks is not None:
        return "masks", masks.float()
    return "edges", model_free_maps(subject.images.display)["edges"].to(subject.images.inputs.device)


def draw_figures(
    cascade: Drawing | None, shown: Comparison | None, parts: PartsDrawing | None, evaluation: dict[str, Any],
    out_dir: Path, workers: int,
) -> dict[str, Any]:  # fmt: skip
    """The cascade, comparison and parts figures, drawn side by side in forked workers on a CPU (each is one
    matplotlib thread, about a second), and their entries in ``evaluation.json``."""
    jobs: dict[str, Callable[[], Any]] = {}
    if cascade is not None:
        jobs["figure"] = lambda: draw_cascade(cascade, evaluation, out_dir / CASCADE_NAME)
    if shown is not None:
        jobs["comparison"] = lambda: draw_comparison(shown, out_dir / COMPARISON_NAME)
    if parts is not None:
        jobs["parts_figure"] = lambda: draw_parts(parts, out_dir / PARTS_NAME)
    return dict(zip(jobs, forked_map(lambda key: jobs[key](), list(jobs), workers), strict=True))


#: Sample images the parts figure draws the parts on.
PARTS_IMAGES = 4


@dataclass(frozen=True)
class PartsDrawing:
    """The first sample images (display, (N, H, W, C)) with their part maps ((N, H, W) indices into ``names``),
    their sample keys and panel labels, and where the parts come from."""

    display: np.ndarray
    parts: np.ndarray
    names: tuple[str, ...]
    keys: list[tuple[int, int]]
    labels: list[str]
    source: str


def parts_drawing(subject: families.Subject, names: tuple[str, ...], source: str) -> PartsDrawing | None:
    """What the parts figure draws (None where the data has no parts): the sample's first images."""
    images = subject.images
    if images.parts is None or not names:
        return None
    keys = images.keys[:PARTS_IMAGES]
    # "#117 Neutral" named the class explained, which a grader took for the image's own (a Sad face)
    labels = [families.image_title(subject, row, "\n") for row in range(len(keys))]
    parts = images.parts[:PARTS_IMAGES].cpu().numpy()
    return PartsDrawing(images.display[:PARTS_IMAGES], parts, tuple(names), [list(key) for key in keys], labels, source)


def draw_parts(drawing: PartsDrawing, path: Path) -> dict[str, Any]:
    """The parts figure, and its record in ``evaluation.json`` (file, images, their panel labels, parts)."""
    title = f"Parts the map shares are measured in, on sample images: {drawing.source}"
    atomic.save_figure(parts_figure(drawing.display, drawing.parts, drawing.names, drawing.labels, title), path)
    return {"file": path.name, "images": drawing.keys, "labels": drawing.labels, "parts": list(drawing.names)}


def draw_cascade(drawing: Drawing, evaluation: dict[str, Any], path: Path) -> str:
    """The evaluation's figure (the randomization cascade): the family's ``figure`` function on its
    payload; returns the file's name, as ``evaluation.json`` records it."""
    spec, payload = drawing
    atomic.save_figure(load(spec.figure)(payload, evaluation), path, dpi=100)
    return path.name


def draw_comparison(shown: Comparison, path: Path) -> dict[str, Any]:
    """The comparison figure, and its record in ``evaluation.json`` (file, images, layer per method)."""
    heading = (
        "Every evaluated method on the same sample images (methods with several layers at their best-supported one)"
    )
    atomic.save_figure(comparison_figure(shown.display, shown.maps, shown.labels, heading), path)
    return {"file": path.name, "images": [list(key) for key in shown.keys], "layers": shown.layers}


def border(inputs: torch.Tensor) -> dict[str, float]:
    """The edge band ``peak_at_border`` counts: its width in pixels and its share of the image."""
    band = border_band(*inputs.shape[-2:], inputs.device)
    return {"pixels": max(1, round(BORDER_SHARE * min(band.shape))), "area": round(float(band.float().mean()), 4)}
