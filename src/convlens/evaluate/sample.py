"""The evaluation's own images and maps: a seeded random sample of the split, stratified by class,
chosen apart from the figures' images (which the visualize stage picks for teaching: its most
confident hits and mistakes), and every localising method's maps of it, computed afresh with the
settings the visualize stage recorded. Scores on a random sample estimate how a method behaves on
the data; scores on chosen images describe those images only.

The sample is ordered so that its first images are themselves stratified samples, nested: the first
``small`` for the costly methods (LIME; by default the whole sample) and, within them, the first
``prefixes`` images for the families that recompute maps for every cascade step or noise draw
(randomization, robustness), so every subset is random and class-balanced too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedShuffleSplit
from torch import Tensor, nn

from convlens.evaluate.inputs import Images, MethodMaps
from convlens.evaluate.recompute import Recompute
from convlens.evaluate.regions import resize_parts
from convlens.evaluate.statistics import MIN_IMAGES
from convlens.explain.localisation import resize_masks
from convlens.explain.selection import explained_class
from convlens.forked import forked_map
from convlens.lineage import method_settings
from convlens.registry import METHODS
from convlens.rundir import MANIFEST, TrainedRun
from convlens.untrusted import UntrustedInputError

#: The sample's default size by device: enough for the paired tests on a 2-core CPU within a minute or
#: so for the demos, more where an accelerator makes them cheap (a real run on a GPU). Costly methods
#: take the whole sample unless ``costly_images`` says fewer (LIME on a 224-px model on a CPU).
SAMPLE_SIZES = {"cpu": 64, "accelerator": 256}


def default_size(device: torch.device, classes: int) -> int:
    """The sample's size on ``device`` (:data:`SAMPLE_SIZES`), raised where needed to :data:`MIN_IMAGES`
    per class (a balanced split's share), the fewest with which the report compares classes and names
    the parts a class's maps favour (10 classes on a CPU: 80, not 64)."""
    return max(SAMPLE_SIZES["cpu" if device.type == "cpu" else "accelerator"], MIN_IMAGES * classes)


@dataclass(frozen=True)
class SampleSettings:
    """``images`` images of the split drawn with ``seed``; the first ``small`` of them (a stratified
    subset) for costly methods, and within those the first of each of ``prefixes`` (the recomputing
    families' image counts, stratified too); each explained for the model's ``predicted`` class or the
    ``true`` one."""

    images: int
    small: int
    seed: int
    explain: str
    prefixes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.images < 1:
            raise ValueError(f"evaluate.images={self.images} must be >= 1")
        if not 1 <= self.small <= self.images:
            raise ValueError(f"evaluate.costly_images={self.small} must lie in [1, evaluate.images={self.images}]")
        if self.seed < 0:
            raise ValueError(f"evaluate.seed={self.seed} must be >= 0 (numpy draws the sample with it)")
        explained_class(self.explain, "evaluate.explain")


def stratified_sample(labels: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` indices into ``labels`` (all of them when there are no more), drawn at random with
    ``seed`` and in proportion to each class's share (scikit-learn's ``StratifiedShuffleSplit``;
    a class with a single image is drawn as any other image), in ascending order."""
    labels = np.asarray(labels)
    if count >= len(labels):
        return list(range(len(labels)))
    if count < 1:
        raise ValueError(f"evaluate.images={count} must be >= 1")
    classes, counts = np.unique(labels, return_counts=True)
    if count < len(classes) or (counts < 2).any():
        chosen = np.random.default_rng(seed).choice(len(labels), size=count, replace=False)
        return sorted(int(index) for index in chosen)
    split = StratifiedShuffleSplit(n_splits=1, train_size=count, random_state=seed)
    chosen, _ = next(split.split(np.zeros(len(labels)), labels))
    return sorted(int(index) for index in chosen)


def nested_sample(labels: np.ndarray, settings: SampleSettings) -> list[int]:
    """The sample's indices into ``labels``: a stratified ``images``-image sample, ordered so that its
    first ``small`` and its first of each of ``prefixes`` (those below ``small``) are stratified samples,
    each drawn from the next larger one."""
    labels = np.asarray(labels)
    sizes = sorted({settings.small, *(size for size in settings.prefixes if size < settings.small)}, reverse=True)
    drawn = stratified_sample(labels, settings.images, settings.seed)
    order: list[int] = []
    for size in sizes:
        inner = [drawn[i] for i in stratified_sample(labels[drawn], size, settings.seed)]
        order = sorted(set(drawn) - set(inner)) + order
        drawn = inner
    return drawn + order


def planned_methods(manifest: dict[str, Any], root: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The settings of every method the visualize stage kept maps of (the localising methods it ran),
    and why each other localising method it lists is left out."""
    found, missing = {}, {}
    for name, summary in manifest["methods"].items():
        if name not in METHODS or not isinstance(summary, Mapping):
            raise UntrustedInputError(f"{root / MANIFEST}: methods.{name} is not a registered method's summary; "
                                      f"rerun `make visualize RUN={root}`")  # fmt: skip
    for name, summary in method_settings(manifest).items():  # the part the evaluation's lineage records
        if summary.get("maps"):
            found[name] = dict(summary.get("parameters") or {})
        elif summary.get("skipped"):
            missing[name] = f"the visualize stage skipped it: {summary['skipped']}"
    return found, missing


def sample_images(
    run: TrainedRun, model: nn.Module, split_name: str, settings: SampleSettings, device: torch.device
) -> Images:  # fmt: skip
    """The sample (:func:`nested_sample`) of ``split_name``: model inputs on ``device``, the class each
    is explained for, the masks and parts when the data has them, and display images."""
    if split_name not in ("train", "val", "test"):
        raise UntrustedInputError(
            f"{run.root / MANIFEST}: split={split_name!r} is none of train, val, test; rerun `make visualize`"
        )
    split = run.datamodule.split(split_name)
    index = nested_sample(split.labels.numpy(), settings)
    inputs = run.datamodule.preprocess(split.images[index]).to(device)
    with torch.no_grad():  # the targets go into the methods' autograd graphs: no inference tensors
        predicted = torch.cat([model(chunk).argmax(dim=1) for chunk in inputs.split(256)])
    targets = predicted if settings.explain == "predicted" else split.labels[index].to(device)
    display = run.datamodule.to_display(inputs.cpu()).movedim(1, -1).numpy()
    size = tuple(inputs.shape[-2:])
    masks = None if split.masks is None else resize_masks(split.masks[index], size).to(device)
    parts = None if split.parts is None else resize_parts(split.parts[index], size).to(device)
    keys = list(zip(index, targets.tolist(), strict=True))
    return Images(inputs, targets, keys, masks, display, split.labels[index].tolist(), parts, predicted.tolist())


#: Images per forward pass of :func:`one_view_accuracy`.
ONE_VIEW_BATCH = 256


def one_view_accuracy(
    run: TrainedRun, model: nn.Module, split_name: str, device: torch.device
) -> dict[str, Any] | None:
    """The model's accuracy on the whole split seen as every map sees each image, one view, where the run tests
    with test-time views (``data.test_time_augmentation``): its test numbers then average several views, and
    the mistakes the maps explain are the one-view model's (grader review of FER2013's ten-crop run); None
    without test-time views."""
    if run.datamodule.test_time_augmentation == "none":
        return None
    split = run.datamodule.split(split_name)
    right = 0
    with torch.inference_mode():
        for images, labels in zip(split.images.split(ONE_VIEW_BATCH), split.labels.split(ONE_VIEW_BATCH), strict=True):
            predicted = model(run.datamodule.preprocess(images).to(device)).argmax(dim=1).cpu()
            right += int((predicted == labels).sum())
    return {"split": split_name, "images": len(split.labels), "accuracy": round(right / len(split.labels), 6),
            "views": run.datamodule.test_time_augmentation}  # fmt: skip


def compute_maps(
    model: nn.Module, images: Images, planned: dict[str, dict[str, Any]], black: Tensor, num_classes: int,
    small: int, workers: int = 1,
) -> dict[str, MethodMaps]:  # fmt: skip
    """Every planned method's maps of the sample with its recorded settings; costly methods (LIME) on
    the first ``small`` images only. On a CPU the work shares out among ``workers`` forked processes
    (:mod:`convlens.forked`): a costly method's images split among them (each explanation is seeded on
    its own, so the maps are those of one call), costly parts first, then one task per other method."""
    processes = workers if images.inputs.device.type == "cpu" else 1
    order = sorted(planned, key=lambda name: not METHODS[name].costly)
    tasks = [(name, rows) for name in order for rows in _parts(name, len(images.keys), small, processes)]
    parts = forked_map(lambda task: _method_maps(*task, planned[task[0]], model, images, black, num_classes),
                       tasks, processes)  # fmt: skip
    return {name: _joined([part for (task, _), part in zip(tasks, parts, strict=True) if task == name])
            for name in planned}  # fmt: skip


def _parts(name: str, count: int, small: int, processes: int) -> list[range]:
    """The sample rows of each task of ``name``: a costly method's first ``small`` rows in ``processes``
    near-equal runs, every other method's ``count`` rows in one."""
    if not METHODS[name].costly:
        return [range(count)]
    bounds = np.linspace(0, small, min(processes, small) + 1).round().astype(int)
    return [range(start, stop) for start, stop in itertools.pairwise(bounds)]


def _method_maps(
    name: str, rows: range, parameters: dict[str, Any], model: nn.Module, images: Images, black: Tensor,
    num_classes: int,
) -> MethodMaps:  # fmt: skip
    started = time.perf_counter()
    recompute = Recompute.recorded(name, parameters, black, num_classes)
    part = slice(rows.start, rows.stop)
    layers = recompute(model, images.inputs[part], images.targets[part])
    keys = images.keys[part]
    index, targets = [key[0] for key in keys], [key[1] for key in keys]
    return MethodMaps(name, layers, index, images.labels[part], targets, parameters, time.perf_counter() - started)


def _joined(parts: list[MethodMaps]) -> MethodMaps:
    """One method's maps from its parts, in row order."""
    first, *rest = parts
    if not rest:
        return first
    layers = {layer: torch.cat([part.layers[layer] for part in parts]) for layer in first.layers}
    joined = {
        field: [value for part in parts for value in getattr(part, field)] for field in ("index", "labels", "targets")
    }
    seconds = sum(part.seconds or 0.0 for part in parts)
    return MethodMaps(first.name, layers, **joined, parameters=first.parameters, seconds=seconds)
