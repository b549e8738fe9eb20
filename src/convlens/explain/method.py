"""What every registered visualization method shares: its input batch, its settings, its results.

A method (see :mod:`convlens.registry`) is an explain function ``explain_<name>(model, batch,
params) -> result`` with a frozen settings dataclass; the visualize stage builds the batch, the
settings (from the config, checked against the dataclass's fields and types) and hands the result
to the method's figure function. Results may offer two optional hooks the stage reads:

- ``scores(row)``: extra numbers for the manifest entry of a figure showing image ``row`` (``None``:
  a figure of the model alone), e.g. how far an inversion's feature loss fell;
- ``localisation_maps()``: non-negative ``{layer or None: (B, H, W)}`` maps that say where the
  evidence lies, scored against ground-truth masks where the data has them;
- ``notes()``: sentences for the report; ``readings()``: a JSON-able record of what the result found, kept in the
  manifest under the method's ``readings`` for the report to set beside other numbers (class models read as
  another class, beside the confusion matrix).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
from torch import Tensor, nn

from convlens.models.layers import default_feature_layers


class NotApplicable(Exception):
    """Raised by an explain function that cannot apply to this model; the message is the reason."""


@dataclass(frozen=True)
class ExplainBatch:
    """The images a method explains: model input (B, C, H, W), the class each is explained for
    (B,), the model input of a black image (1, C, H, W), a baseline some methods need, the
    model's number of classes, the run directory, for methods that read what other stages left
    there (e.g. the generator of ``make generate``; None outside a run), and the class names in label
    order, for notes that name classes (empty: classes go by their numbers)."""

    inputs: Tensor
    targets: Tensor
    black: Tensor
    num_classes: int
    run_dir: Path | None = None
    class_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's settings (frozen dataclasses whose ``__post_init__`` rejects values out
    of range with a ``ValueError`` naming the field). Two optional fields choose which of the stage's images a
    method explains: ``images: int`` the first image of each of the first N classes, ``per_class:
    int | None`` the first N images of every class (None: all). Without them, all images."""

    def resolved(self, model: nn.Module) -> Self:
        """These settings with model-dependent defaults filled in (e.g. layers), as the manifest records them."""
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Field metadata of a setting that changes only how fast a map is computed, not the map (e.g. how many
#: path points go through the model at once): :func:`at_machine_defaults` resets it.
TIME_ONLY = "time_only"


def at_machine_defaults(params: MethodParams) -> MethodParams:
    """``params`` with every :data:`TIME_ONLY` setting at its default (the device's choice), so that maps
    computed again on another machine (the evaluation of a run visualized on a GPU) run at this one's
    best speed, the same maps."""
    defaults = {field.name: field.default for field in dataclasses.fields(params) if field.metadata.get(TIME_ONLY)}
    return dataclasses.replace(params, **defaults)


@dataclass(frozen=True)
class FeatureLayersParams(MethodParams):
    """Settings of methods that look at layers: ``layers`` None means an early and a deep one, the
    stem's ReLU and the output of ``layer4`` (conv5_x)."""

    layers: list[str] | None = None

    def resolved(self, model: nn.Module) -> Self:
        return dataclasses.replace(self, layers=list(self.layers) if self.layers else default_feature_layers(model))


@runtime_checkable
class Localising(Protocol):
    def localisation_maps(self) -> dict[str | None, np.ndarray]: ...


def at_least(field: str, value: float, minimum: float, why: str = "") -> None:
    """A ``ValueError`` naming ``field`` when ``value < minimum``."""
    if value < minimum:
        raise ValueError(f"{field}={value} must be >= {minimum}{f' ({why})' if why else ''}")
