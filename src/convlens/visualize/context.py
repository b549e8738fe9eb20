"""What the visualize stage explains: the chosen test images, and the model and device around them.

The images are chosen once per run (per class the most confidently correct and wrong examples, see
:mod:`convlens.explain.selection`); each method explains all of them or the subset its settings
ask for, and its figures show them with their captions and file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from convlens.explain.localisation import resize_masks
from convlens.explain.method import ExplainBatch, MethodParams
from convlens.explain.selection import Selection, explained_class, select_test_images
from convlens.figures.panels import Caption
from convlens.figures.shown import Shown
from convlens.rundir import CONFUSION_CSV, TrainedRun
from convlens.text import slug
from convlens.visualize.schema import SelectionConfig


@dataclass(frozen=True)
class Explained:
    """What a method explains: positions into the chosen images (repeats allowed), the class each is
    explained for, and the group each row is shown in (``correct``, ``mistake``, ``confused``)."""

    positions: list[int]
    targets: list[int]
    groups: list[str]


@dataclass(frozen=True)
class Chosen:
    """The selected test images: model input (K, C, H, W), display images (K, H, W, C) in [0, 1],
    the model's verdicts, the class each image is explained for, for synthetic data the ground-truth masks
    (K, H, W) bool of the class-defining region at input resolution, and whose confusion matrix ranked the confused
    pairs (``pairs_from``: the run's ``confusion_matrix.csv``, or ``candidates``, the images' own predictions)."""

    inputs: Tensor
    display: np.ndarray
    selection: Selection
    targets: Tensor
    class_names: list[str]
    masks: np.ndarray | None
    pairs_from: str = "candidates"

    def __len__(self) -> int:
        return len(self.inputs)

    def stem(self, position: int) -> str:
        """File name stem: true class and test-set index, e.g. ``happy_012``."""
        label = self.class_names[int(self.selection.labels[position])]
        return f"{slug(label)}_{int(self.selection.indices[position]):03d}"

    def first_per_class(self, count: int) -> list[int]:
        """Positions of the first ``count`` chosen images of each true class (the correct one first)."""
        labels = self.selection.labels[: self.selection.per_class].tolist()
        return [p for p, label in enumerate(labels) if labels[:p].count(label) < count]

    def explained(self, params: MethodParams, explains_class: bool = False) -> Explained:
        """The images a method explains and the class it explains each for (see
        :class:`~convlens.explain.method.MethodParams`); for a method whose maps ``explains_class``, a mistake
        of a class with no correct pick also for its true class; with ``confused: N``, each of the first N
        confused-pair images once for its predicted and once for its true class."""
        if hasattr(params, "images"):
            positions = self.first_per_class(1)[: params.images]
        elif getattr(params, "per_class", None) is not None:
            positions = self.first_per_class(params.per_class)
        else:
            positions = list(range(self.selection.per_class))
        rows = []
        for p in positions:
            target = int(self.targets[p])
            again = self._unrecognised(p, target) if explains_class else []
            rows += [(p, target, "correct" if self.selection.correct[p] else "mistake"), *again]
        positions, targets, groups = [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]
        for p in self.pair_positions[: getattr(params, "confused", 0)]:
            positions += [p, p]
            targets += [int(self.selection.predictions[p]), int(self.selection.labels[p])]
            groups += ["confused", "confused"]
        return Explained(positions, targets, groups)

    def _unrecognised(self, position: int, target: int) -> list[tuple[int, int, str]]:
        """The mistake at ``position`` once more, explained for its true class, when that class has no
        correctly classified image among the picks (FER2013's Disgust, never predicted): otherwise no figure
        would show the evidence for that class at all, only for the class the model answered instead."""
        label = int(self.selection.labels[position])
        picks = range(self.selection.per_class)
        recognised = any(bool(self.selection.correct[p]) and int(self.selection.labels[p]) == label for p in picks)
        return [] if recognised or target == label else [(position, label, "mistake")]

    @property
    def pair_positions(self) -> list[int]:
        """Positions of the confused-pair examples, the most frequent confusion first."""
        return self.selection.pairs.tolist()

    def shown(self, title: str, explained: Explained) -> Shown:
        """How the figures of a method titled ``title`` show the explained images."""
        captions = tuple(
            self._caption(p, t, title) for p, t in zip(explained.positions, explained.targets, strict=True)
        )
        stems = tuple(self.stem(position) for position in explained.positions)
        return Shown(title, self.display[explained.positions], captions, stems, tuple(explained.groups),
                     tuple(self.class_names))  # fmt: skip

    def record(self, position: int, target: int | None = None) -> dict[str, Any]:
        """Manifest fields of one image (explained for ``target``, default its chosen class; its probability
        ``class_probability``)."""
        selection = self.selection
        explained = int(self.targets[position]) if target is None else target
        return {
            "class": self.class_names[explained],
            "true_label": self.class_names[int(selection.labels[position])],
            "predicted_label": self.class_names[int(selection.predictions[position])],
            "confidence": round(float(selection.confidences[position]), 4),
            "class_probability": round(float(selection.probabilities[position, explained]), 4),
            "image_index": int(selection.indices[position]),
        }

    def _caption(self, position: int, target: int, title: str) -> Caption:
        record = self.record(position, target)
        return Caption(title, record["class"], record["true_label"], record["predicted_label"], record["confidence"],
                       target_probability=record["class_probability"])  # fmt: skip


@dataclass(frozen=True)
class Context:
    """What every method gets: the run, its model (eval mode, on ``device``), the chosen images and
    the model input of a black image."""

    run: TrainedRun
    model: nn.Module
    chosen: Chosen
    device: torch.device
    black: Tensor

    def batch(self, explained: Explained) -> ExplainBatch:
        chosen = self.chosen
        targets = torch.tensor(explained.targets, dtype=torch.long)
        inputs = chosen.inputs[explained.positions]
        classes = tuple(chosen.class_names)
        return ExplainBatch(inputs, targets, self.black, len(classes), Path(self.run.root), classes)


def choose_images(
    run: TrainedRun, model: nn.Module, selection: SelectionConfig, confusion: Tensor | None = None
) -> Chosen:
    """Deterministic test images with the class each is explained for: ``explain: predicted`` (what
    the model saw) or ``true``; the confused pairs those most frequent in ``confusion`` (the run's test confusion
    matrix) that the candidates hold, else in the candidates' own predictions."""
    explain = explained_class(selection.explain, "visualize.selection.explain")
    datamodule = run.datamodule
    split = datamodule.split(selection.split)
    chosen = select_test_images(
        model, split.images, split.labels, datamodule.preprocess, correct_per_class=selection.correct_per_class,
        wrong_per_class=selection.wrong_per_class, confused_pairs=selection.confused_pairs,
        max_candidates=selection.max_candidates, rank=selection.rank, confusion=confusion,
    )  # fmt: skip
    if len(chosen) == 0:
        raise ValueError("visualize.selection chose no images; raise correct_per_class or wrong_per_class")
    inputs = datamodule.preprocess(split.images[chosen.indices]).cpu()
    display = datamodule.to_display(inputs).movedim(1, -1).numpy()
    targets = chosen.predictions if explain == "predicted" else chosen.labels
    masks = None if split.masks is None else resize_masks(split.masks[chosen.indices], tuple(inputs.shape[-2:])).numpy()
    pairs_from = CONFUSION_CSV if confusion is not None else "candidates"
    return Chosen(inputs, display, chosen, targets, run.class_names, masks, pairs_from)
