"""Each family of metrics run over every method's maps: the JSON records per method and layer, and
why a method is left out of a family. The baselines (random maps; for localisation and faithfulness
also the model-free ``edges`` and ``centre`` maps, :mod:`convlens.evaluate.baselines`) are computed once
per run, on the same images and in the same way as the methods' scores. Every family's function has one shape,
``(subject, params) -> Family``, and is registered in :mod:`convlens.evaluation_registry`;
:func:`run_family` runs one, leaving out first what a family that recomputes maps skips.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from convlens.data.arrays import class_name
from convlens.evaluate import faithfulness as faith
from convlens.evaluate import localisation as local
from convlens.evaluate import randomization as rand
from convlens.evaluate import robustness as robust
from convlens.evaluate.baselines import model_free_maps
from convlens.evaluate.inputs import Images, Key, MethodMaps
from convlens.evaluate.recompute import Recompute
from convlens.evaluate.scores import mean_of, scores
from convlens.evaluate.similarity import is_flat
from convlens.evaluation_registry import FamilySpec
from convlens.registry import load

#: Per method, per layer ('' for a single map), the family's JSON record.
Records = dict[str, dict[str, dict[str, Any]]]


@dataclass
class Family:
    """One family's results: ``records`` per method and layer, ``skipped`` methods with the reason,
    ``baseline`` means of the random maps' scores (for the report's overview) and, for a family that
    registers a ``figure`` function, the ``figure`` payload it draws (the cascade's maps)."""

    records: Records = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    figure: Any = None


@dataclass(frozen=True)
class Subject:
    """What is evaluated: the model (eval mode, on the device), the images, every method's maps,
    the model input of a black image (1, C, H, W) and the number of classes."""

    model: nn.Module
    images: Images
    methods: dict[str, MethodMaps]
    black: Tensor
    num_classes: int
    #: The methods whose maps choose a recomputing family's common images (None: ``methods``), so that a
    #: family run on some of the methods (one task per method) scores them on the same images as all.
    choosing: dict[str, MethodMaps] | None = None
    #: The run's class names in label order, for the figures (empty: classes named by their numbers).
    class_names: tuple[str, ...] = ()

    def class_name(self, label: int) -> str:
        return class_name(self.class_names, label)

    def rows(self, maps: MethodMaps) -> Tensor:
        return self.images.positions(maps.keys)

    def recompute(self, name: str) -> Recompute:
        maps = self.methods[name]
        return Recompute.recorded(name, maps.parameters, self.black, self.num_classes)


def run_family(
    spec: FamilySpec, subject: Subject, params: Any, only: str | None = None, part: str | None = None
) -> Family:
    """The family's scores; a family that recomputes maps runs without the methods in ``params.skip``
    (by default the costly ones), which are recorded as left out with the reason, and with ``only`` on
    that one method alone, on the images all its kept methods choose; a family of ``parts`` runs the
    ``part`` named alone (:func:`merged` joins the parts)."""
    if not spec.recomputes:
        return load(spec.score)(subject, params, **({} if part is None else {"part": part}))
    reason = (
        f"left out to save time: its maps are too costly to compute again for every step; "
        f'`make evaluate ARGS="{spec.name}.skip=[]"` includes it'
    )
    kept = {name: maps for name, maps in subject.methods.items() if name not in params.skip}
    if only is not None:
        if only not in kept:
            return Family(skipped={only: reason})
        subject = dataclasses.replace(subject, choosing=kept)
    scored = kept if only is None else {only: kept[only]}
    family = load(spec.score)(dataclasses.replace(subject, methods=scored), params)
    if only is None:
        family.skipped |= {name: reason for name in subject.methods if name not in kept}
    return family


def merged(parts: list[Family]) -> Family:
    """One family from its parts (per method, or per share of its metrics): their records joined layer by
    layer and their baselines key by key (:func:`_joined`; parts per method compute the same baseline),
    their reasons joined, the figure payloads joined by their ``merged``."""
    family = Family()
    for part in parts:
        family.records = _joined(family.records, part.records)
        family.skipped |= part.skipped
        family.baseline = _joined(family.baseline, part.baseline)
        if part.figure is not None:
            family.figure = part.figure if family.figure is None else family.figure.merged(part.figure)
    family.figure = family.figure.settled() if family.figure is not None else None
    return family


def _joined(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """``first | second``, where both hold a dict under a key, those dicts joined the same way."""
    both = {key: _joined(first[key], value) for key, value in second.items()
            if isinstance(value, dict) and isinstance(first.get(key), dict)}  # fmt: skip
    return first | second | both


def localisation(subject: Subject, params: local.LocalisationParams) -> Family:
    """Pointing game, relevance mass and rank accuracy of every map against the masks, each tested
    against random maps (``random_draws`` per image) and the model-free maps on the same images."""
    masks = subject.images.masks
    if masks is None:
        reason = (
            "this dataset has no ground-truth masks of what carries the class (only convlens's synthetic shapes and "
            "faces have them)"
        )
        return Family(skipped=dict.fromkeys(subject.methods, reason))
    generator = torch.Generator(device=masks.device).manual_seed(params.seed)
    baselines = {"random": local.random_baseline(masks, params.random_draws, generator)}
    baselines |= {name: local.all_metrics(maps, masks) for name, maps in _model_free(subject).items()}
    family = Family(baseline=_baseline_means(baselines) | {"chance": mean_of(local.mask_area(masks))})
    for name, maps in subject.methods.items():
        rows = subject.rows(maps)
        picked = _picked(baselines, rows)
        family.records[name] = {
            layer: local.localisation(values, masks[rows], picked) for layer, values in maps.layers.items()
        }
    return family


def faithfulness(subject: Subject, params: faith.FaithfulnessParams, part: str | None = None) -> Family:
    """Deletion, insertion and ROAD of every map, each tested against random maps (``random_draws`` per
    image) and the model-free maps on the same images; a ``part`` of :data:`~convlens.evaluate.faithfulness.PARTS`
    scores only its own metrics (:func:`merged` joins the parts)."""
    images = subject.images
    fill = subject.black.to(images.inputs.device) if params.fill == "black" else torch.zeros_like(subject.black)
    probe = faith.Probe(subject.model, images.inputs, images.targets, fill.to(images.inputs.device), params.seed)
    baselines = {"random": faith.random_baseline(probe, params, part)}
    baselines |= {name: faith.per_image(probe, maps, params, part) for name, maps in _model_free(subject).items()}
    scored = [key for key in faith.BETTER if key in baselines["random"]]
    means = _baseline_means({name: {key: found[key] for key in scored} for name, found in baselines.items()})
    family = Family(baseline=means | {"curves": faith.mean_curves(baselines["random"], params)})
    for name, maps in subject.methods.items():
        rows = subject.rows(maps)
        method_probe = probe.subset(rows)
        picked = _picked(baselines, rows)
        family.records[name] = {
            layer: faith.faithfulness(faith.per_image(method_probe, values, params, part), picked, params)
            for layer, values in maps.layers.items()
        }
    return family


def _model_free(subject: Subject) -> dict[str, Tensor]:
    """The ``edges`` and ``centre`` maps (N, H, W) of every evaluated image, on the images' device."""
    maps = model_free_maps(subject.images.display)
    return {name: values.to(subject.images.inputs.device) for name, values in maps.items()}


def _picked(baselines: dict[str, dict[str, Tensor]], rows: Tensor) -> dict[str, dict[str, Tensor]]:
    """Each baseline's per-image values at ``rows`` (a method's images)."""
    return {name: {key: values[rows] for key, values in found.items()} for name, found in baselines.items()}


def _baseline_means(baselines: dict[str, dict[str, Tensor]]) -> dict[str, Any]:
    """``baselines.<family>`` in the JSON: the random maps' mean per metric, and the model-free maps'
    means under their names."""
    means = {name: {key: mean_of(values) for key, values in found.items()} for name, found in baselines.items()}
    return means.pop("random") | means


#: The most images the cascade figure chooses its one image among (each carries every method's maps of every step
#: from the workers to the stage).
CASCADE_CANDIDATES = 8


@dataclass(frozen=True)
class CascadeMaps:
    """For the cascade figure: the images it may show (H, W, C; the first :data:`CASCADE_CANDIDATES` the model
    classifies right) and per method and layer their maps (K, H, W) from the trained model and after each cascade
    step; ``titles`` name the images (class, sample index, class explained), ``images`` counts the images the
    cascade ran on. :meth:`settled` keeps the one image shown."""

    candidates: list[np.ndarray]
    maps: dict[str, dict[str, list[np.ndarray]]]
    titles: list[str] = field(default_factory=list)
    images: int = 1

    def merged(self, other: CascadeMaps) -> CascadeMaps:
        """Both payloads' methods (of the same images: the family's parts share their images)."""
        return CascadeMaps(self.candidates, self.maps | other.maps, self.titles, self.images)

    def settled(self) -> CascadeMaps:
        """The payload of the one candidate whose maps, over every method, layer and step, are least often flat
        (the first among equals): FER2013's figure showed the one trusted map blank after the head was
        re-initialised, on an image where it went flat, and the reader saw a map vanish, not change (a grader)."""
        steps = [step for layers in self.maps.values() for maps in layers.values() for step in maps]
        flat = sum((_flat_per_image(step) for step in steps), np.zeros(len(self.candidates), dtype=int))
        best = int(np.argmin(flat))
        maps = {name: {layer: [step[best : best + 1] for step in found] for layer, found in layers.items()}
                for name, layers in self.maps.items()}  # fmt: skip
        title = self.titles[best] if self.titles else ""
        return CascadeMaps([self.candidates[best]], maps, [title], self.images)

    @property
    def image(self) -> np.ndarray:
        """The first candidate image (the one shown, once :meth:`settled`)."""
        return self.candidates[0]

    @property
    def title(self) -> str:
        return self.titles[0] if self.titles else ""


def _flat_per_image(maps: np.ndarray) -> np.ndarray:
    """Per map of (K, H, W): 1 where it is constant (:func:`~convlens.evaluate.similarity.is_flat`), else 0."""
    return is_flat(torch.from_numpy(np.ascontiguousarray(maps))).numpy().astype(int)


def randomization(subject: Subject, params: rand.RandomizationParams) -> Family:
    """The cascade and its twin: every method's maps (each view) after each stage and after the twin's
    full cascade, compared with the trained model's maps and with the images' edge maps; the figure
    payload holds the maps of the images the model classifies right (:func:`_right`), of which the figure shows the
    one whose maps go flat least (:meth:`CascadeMaps.settled`; none when no method is left)."""
    family, chosen, index = _with_common_images(subject, params.images)
    if not chosen:
        return family
    inputs, targets = _inputs(subject, index)
    shown = _right(subject, index)[:CASCADE_CANDIDATES]
    recompute = {name: subject.recompute(name) for name in chosen}
    trained = {name: method.views(subject.model, inputs, targets) for name, method in recompute.items()}
    steps: dict[str, list[dict[str, dict[str, Tensor]]]] = {name: [] for name in chosen}
    for _, randomized in rand.cascade(subject.model, params.stages, params.seed):
        for name, method in recompute.items():
            steps[name].append(method.views(randomized, inputs, targets))
    *_, (_, twin_model) = rand.cascade(subject.model, params.stages, params.seed + 1)
    twin = {name: method.views(twin_model, inputs, targets) for name, method in recompute.items()}
    edges = _model_free(subject)["edges"][subject.images.positions(index)]
    figure: dict[str, dict[str, list[np.ndarray]]] = {}
    for name in chosen:
        family.records[name], figure[name] = {}, {}
        for layer, views in trained[name].items():
            cascade = rand.Cascade(views, [step[layer] for step in steps[name]], twin[name][layer], edges)
            family.records[name][layer] = rand.randomization(cascade, params)
            maps = [views[rand.TESTED_VIEW], *(step[rand.TESTED_VIEW] for step in cascade.steps)]
            figure[name][layer] = [m[shown].cpu().numpy() for m in maps]  # (K, H, W) per step
    rows = [subject.images.keys.index(index[position]) for position in shown]
    displays = [subject.images.display[row] for row in rows]
    family.figure = CascadeMaps(displays, figure, [image_title(subject, row) for row in rows], len(index))
    return family


def _right(subject: Subject, index: list[Key]) -> list[int]:
    """The positions in ``index`` of the images the model classifies right, in order; every position where the
    predictions or true labels are unknown or none is right: the cascade's figure shows one image, and FER2013's
    showed a Sad face answered Neutral, a mistake, without saying why that one (a grader's finding)."""
    images = subject.images
    if images.predicted is None or images.labels is None:
        return list(range(len(index)))
    rows = [images.keys.index(key) for key in index]
    right = [position for position, row in enumerate(rows) if images.predicted[row] == images.labels[row]]
    return right or list(range(len(index)))


def image_title(subject: Subject, row: int, separator: str = ", ") -> str:
    """``star #120, explained for star``: the sample image at ``row`` (its true class where known)."""
    index, target = subject.images.keys[row]
    labels = subject.images.labels
    shown = f"{subject.class_name(labels[row])} #{index}" if labels else f"#{index}"
    return f"{shown}{separator}explained for {subject.class_name(target)}"


def robustness(subject: Subject, params: robust.RobustnessParams) -> Family:
    """Max-sensitivity of every method's maps under small uniform input noise, tested against the Sobel
    edge map's on the very same noisy copies (a map that moves less than an edge detector's is robust
    for a reason of its own) and, reported beside, uniform random maps redrawn for every copy."""
    family, chosen, index = _with_common_images(subject, params.images)
    if not chosen:
        return family
    inputs, targets = _inputs(subject, index)
    shape = (len(index), *inputs.shape[-2:])
    references = {"edges": robust.edge_sensitivity(inputs, params),
                  "random": robust.random_reference(torch.Size(shape), params, inputs.device)}  # fmt: skip
    family.baseline = {"max_sensitivity": mean_of(references["random"]),
                       "edges": {"max_sensitivity": mean_of(references["edges"])}}  # fmt: skip
    for name, maps in chosen.items():
        trained = {layer: values[_rows(maps, index)] for layer, values in maps.layers.items()}
        values = robust.max_sensitivity(subject.recompute(name), subject.model, inputs, targets, trained, params)
        cells = scores({layer: (values[layer], references, "lower") for layer in trained})
        family.records[name] = {layer: {"max_sensitivity": cell} for layer, cell in cells.items()}
    return family


def _with_common_images(subject: Subject, images: int) -> tuple[Family, dict[str, MethodMaps], list[Key]]:
    """The methods a family recomputes and the common images they are scored on (chosen by
    ``subject.choosing`` where set); no method when no image has maps of every method, recorded as the reason."""
    chosen = subject.methods
    index = common_images(subject.choosing or chosen, images) if chosen else []
    if chosen and not index:
        reason = "no test image has maps of every method evaluated here"
        return Family(skipped=dict.fromkeys(chosen, reason)), {}, []
    return Family(), chosen, index


def common_images(methods: dict[str, MethodMaps], count: int) -> list[Key]:
    """The first ``count`` (image, class) rows (in the first method's order) that every method has maps
    of, each row where some method's map is flat swapped for the next unused row of the same class whose
    maps all have structure: a flat map has no ranking to correlate and no norm to be relative to, so it
    would leave the cell, and the same-class swap keeps the prefix stratified (``sample.py``)."""
    first, *others = methods.values()
    common = [key for key in first.keys if all(key in maps.keys for maps in others)]
    label, flat = dict(zip(first.keys, first.labels, strict=True)), _with_a_flat_map(methods)
    chosen, spare = common[:count], [key for key in common[count:] if key not in flat]
    for place, key in enumerate(chosen):
        swap = next((other for other in spare if label[other] == label[key]), None) if key in flat else None
        if swap is not None:
            chosen[place] = swap
            spare.remove(swap)
    return chosen


def _with_a_flat_map(methods: dict[str, MethodMaps]) -> set[Key]:
    """The rows where at least one method's map (at some layer) is flat."""
    flat: set[Key] = set()
    for maps in methods.values():
        for values in maps.layers.values():
            flat |= {key for key, constant in zip(maps.keys, is_flat(values).tolist(), strict=True) if constant}
    return flat


def _inputs(subject: Subject, index: list[Key]) -> tuple[Tensor, Tensor]:
    rows = subject.images.positions(index)
    return subject.images.inputs[rows], subject.images.targets[rows]


def _rows(maps: MethodMaps, index: list[Key]) -> Tensor:
    keys = maps.keys
    return torch.tensor([keys.index(key) for key in index], device=next(iter(maps.layers.values())).device)
