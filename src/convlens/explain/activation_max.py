"""Activation maximization: synthetic inputs that excite a chosen filter or class most.

Gradient ascent from seeded noise with the regularizers of Yosinski et al. (2015) that make the
result readable: random jitter (a roll by a few pixels each step), a Gaussian blur every few steps
and an L2 penalty. ``class_model_images`` is the class model of Simonyan et al. (2014): the
un-normalized class score minus ``l2_weight * ||x||^2`` (set ``jitter=0, blur_every=0`` for the
paper's plain version). No library offers this for arbitrary layers, so the loop is written here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms.v2.functional import gaussian_blur

from convlens.data.arrays import class_name
from convlens.explain.features import feature_maps
from convlens.explain.method import ExplainBatch, FeatureLayersParams, MethodParams, at_least
from convlens.models.conventions import conforming
from convlens.models.layers import (
    check_channels,
    eval_mode,
    first_conv_name,
    layer_input,
    layer_output,
    model_device,
    resolve_layer,
)
from convlens.text import slug

Objective = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class AscentParams(MethodParams):
    """Gradient-ascent and regularization settings (``blur_every=0`` or ``jitter=0`` turn those off)."""

    steps: int = 128
    lr: float = 0.05
    l2_weight: float = 1e-4
    jitter: int = 2
    blur_every: int = 4
    blur_sigma: float = 0.5
    init_scale: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        at_least("steps", self.steps, 1)
        at_least("jitter", self.jitter, 0)
        at_least("blur_every", self.blur_every, 0)


@dataclass(frozen=True)
class ClassModelParams(AscentParams):
    """Class-model images: one per class, with the ascent settings above."""


@dataclass(frozen=True)
class ActivationMaxParams(FeatureLayersParams, AscentParams):
    """For each of ``layers`` (None: the first convolution's ReLU and the output of ``layer4``), the
    ``channels`` given, or None: the ``top_k`` most active channels on the images explained (mean
    activation), dead channels (never positive on those images) left out."""

    channels: list[int] | None = None
    top_k: int = 6


@dataclass(frozen=True)
class Maximization:
    """One synthetic image per target (CPU tensors).

    ``targets``: (K,) channel or class indices; ``images``: (K, C, H, W) in normalized input space;
    ``start_activation`` / ``final_activation``: (K,) target activation of the starting noise and
    of the result (no jitter); ``history``: (steps, K) target activation during the ascent.
    """

    layer: str
    targets: Tensor
    images: Tensor
    start_activation: Tensor
    final_activation: Tensor
    history: Tensor


@dataclass(frozen=True)
class MaximizedChannels(Maximization):
    """Channel maximization; its score is the median over the channels of the mean activation reached (a
    gain over the start is no number for a channel that is 0 on the starting noise: FER2013 gave 6.8e12)."""

    def scores(self, row: int | None) -> dict[str, float]:
        return {"median_activation_reached": round(float(self.final_activation.float().quantile(0.5)), 3)}


#: The negative slope the ascent gives a ReLU channel (:func:`maximize_channels`): small enough that the
#: objective is the channel's output wherever it fires.
LEAK = 0.01

#: A class-model image the model gives less than this probability of its class has failed: the ascent
#: raised the logit without making the model answer the class (FER2013, 3 epochs: Fear's image reached
#: logit 7.7 at probability 0.01), so the image is not what the model takes for the class.
CLASS_MODEL_FAILED_BELOW = 0.5


@dataclass(frozen=True)
class ClassModels(Maximization):
    """Class models, with ``probabilities`` (K,): the softmax probability the model gives each image for
    its own class (the logit alone says nothing about the other classes), ``answers`` (K,): the class it gives
    each image the highest probability, with that probability, ``answer_probabilities``, and the ``class_names``
    the notes name them by (empty: by their numbers)."""

    probabilities: Tensor | None = None
    answers: Tensor | None = None
    answer_probabilities: Tensor | None = None
    class_names: tuple[str, ...] = ()

    def failed(self) -> list[int]:
        """Rows whose image the model gives less than :data:`CLASS_MODEL_FAILED_BELOW` of its class."""
        found = self.probabilities if self.probabilities is not None else torch.ones(len(self.targets))
        return [row for row, probability in enumerate(found.tolist()) if probability < CLASS_MODEL_FAILED_BELOW]

    def scores(self, row: int | None) -> dict[str, float]:
        if self.probabilities is None:
            return {}
        return {"median_class_probability": round(float(self.probabilities.float().quantile(0.5)), 3)}

    def notes(self) -> list[str]:
        """A note naming the failed class models (:meth:`failed`), each with the class the model reads in it."""
        failed = self.failed()
        if not failed:
            return []
        assert self.probabilities is not None, "failed() finds rows only where probabilities were measured"
        classes = "; ".join(
            f"{class_name(self.class_names, int(self.targets[row]))} {float(self.probabilities[row]):.2f}"
            f"{self._read_as(row)}"
            for row in failed
        )
        return [f"{len(failed)} of {len(self.targets)} class-model images failed ({classes}): the model gives "
                f"each less than {CLASS_MODEL_FAILED_BELOW:g} probability of its class, so those panels (labelled "
                "'failed', in red) do not show what the model takes for the class"]  # fmt: skip

    def readings(self) -> dict[str, Any]:
        """The failed class models for the manifest, each with the class the model reads in its image (the report
        sets them beside the confusion matrix): ``{"failed": [{"class", "probability", "read_as",
        "read_as_probability"}, ...]}``; nothing where none failed or the answers were not measured."""
        failed = self.failed()
        if not failed or self.answers is None or self.answer_probabilities is None or self.probabilities is None:
            return {}
        return {"failed": [{"class": class_name(self.class_names, int(self.targets[row])),
                            "probability": round(float(self.probabilities[row]), 4),
                            "read_as": class_name(self.class_names, int(self.answers[row])),
                            "read_as_probability": round(float(self.answer_probabilities[row]), 4)}
                           for row in failed]}  # fmt: skip

    def _read_as(self, row: int) -> str:
        """``, read as Surprise 0.97``: the class the model answers for the image at ``row`` (FER2013: Fear's image
        answered Surprise, the class Fear is taken for 116 times; a grader asked which class wins)."""
        if self.answers is None or self.answer_probabilities is None:
            return ""
        answer = class_name(self.class_names, int(self.answers[row]))
        return f", read as {answer} {float(self.answer_probabilities[row]):.2f}"


@conforming
def maximize_channels(
    model: nn.Module,
    layer: str,
    channels: Sequence[int],
    size: int | tuple[int, int],
    config: AscentParams = AscentParams(),
) -> MaximizedChannels:
    """Images that maximize the spatial mean of each of ``channels`` of ``layer``, one per channel. At an
    ``nn.ReLU`` the ascent follows the output of a leaky ReLU on the same input: the ReLU's output is 0 with a
    zero gradient wherever its input is negative, so a channel silent on the starting noise could never rise
    (FER2013, 3 epochs: 4 of 6 ``layer4.relu2`` channels stayed at 0; Lucid redirects the ReLU's gradient at
    the start for the same reason). The result is judged on the ReLU's own output."""
    targets = torch.as_tensor(list(channels), dtype=torch.long)
    objective = _channel_objective(model, layer, targets)
    before = isinstance(resolve_layer(model, layer), nn.ReLU)
    ascended = _channel_objective(model, layer, targets, _leaky_output) if before else objective
    return _maximize(model, layer, targets, objective, size, config, MaximizedChannels, ascended)


def _leaky_output(model: nn.Module, images: Tensor, layer: str) -> Tensor:
    """A ReLU layer's output as a leaky ReLU would give it (:data:`LEAK` below 0): the same where the channel
    fires, and a gradient where it does not."""
    return F.leaky_relu(layer_input(model, images, layer), LEAK)


@conforming
def class_model_images(
    model: nn.Module,
    classes: Sequence[int],
    size: int | tuple[int, int],
    config: AscentParams = AscentParams(),
) -> ClassModels:
    """Class-model images (Simonyan et al. 2014): one image per class maximizing its score (logit), with
    the probability the model then gives each image for its class."""
    targets = torch.as_tensor(list(classes), dtype=torch.long)
    found = _maximize(model, "logits", targets, _class_objective(model, targets), size, config, ClassModels)
    with eval_mode(model), torch.no_grad():
        probabilities = torch.softmax(model(found.images.to(model_device(model))), dim=1).cpu()
    best, answers = probabilities.max(dim=1)
    return replace(found, probabilities=probabilities[torch.arange(len(targets)), targets], answers=answers,
                   answer_probabilities=best)  # fmt: skip


def _channel_objective(
    model: nn.Module, layer: str, channels: Tensor, read: Callable[[nn.Module, Tensor, str], Tensor] = layer_output
) -> Objective:
    """The spatial mean of each image's channel of ``layer``, as ``read`` gives it (its output, or input)."""

    def objective(images: Tensor) -> Tensor:
        output = read(model, images, layer)
        check_channels(output, channels.tolist(), layer)
        rows = torch.arange(len(images), device=output.device)
        return output[rows, channels.to(output.device)].flatten(1).mean(1)

    return objective


def _class_objective(model: nn.Module, classes: Tensor) -> Objective:
    def objective(images: Tensor) -> Tensor:
        logits = model(images)
        bad = [c for c in classes.tolist() if not 0 <= c < logits.shape[1]]
        if bad:
            raise ValueError(f"class {bad[0]} out of range for a model with {logits.shape[1]} classes")
        return logits[torch.arange(len(images), device=logits.device), classes.to(logits.device)]

    return objective


def _maximize(
    model: nn.Module,
    layer: str,
    targets: Tensor,
    objective: Objective,
    size: int | tuple[int, int],
    config: AscentParams,
    result: type[Maximization] = Maximization,
    ascended: Objective | None = None,
) -> Maximization:
    """Ascend ``ascended`` (None: ``objective``) from seeded noise; ``objective`` judges the start and result."""
    start = _noise(model, len(targets), size, config)
    with eval_mode(model):
        start_activation = _evaluate(objective, start)
        images, history = _ascend(ascended or objective, start, config)
        final_activation = _evaluate(objective, images)
    return result(layer, targets, images.cpu(), start_activation, final_activation, history.cpu())


def _ascend(objective: Objective, start: Tensor, config: AscentParams) -> tuple[Tensor, Tensor]:
    """Adam on ``-(objective - l2_weight * ||x||^2)`` with jitter and periodic blur."""
    image = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed + 1)
    history = []
    for step in range(1, config.steps + 1):
        activation = objective(_jitter(image, config.jitter, generator))
        loss = -(activation - config.l2_weight * image.flatten(1).pow(2).sum(1))
        optimizer.zero_grad()
        loss.sum().backward(inputs=[image])
        optimizer.step()
        history.append(activation.detach())
        if config.blur_every and step % config.blur_every == 0:
            _blur_(image, config.blur_sigma)
    return image.detach(), torch.stack(history)


def _jitter(image: Tensor, jitter: int, generator: torch.Generator) -> Tensor:
    """Roll the batch by a random offset in [-jitter, jitter] pixels per axis."""
    if jitter == 0:
        return image
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return image.roll(shifts=(dy, dx), dims=(-2, -1))


@torch.no_grad()
def _blur_(image: Tensor, sigma: float) -> None:
    kernel = 2 * max(1, round(2 * sigma)) + 1
    image.copy_(gaussian_blur(image, [kernel, kernel], [sigma, sigma]))


@torch.no_grad()
def _evaluate(objective: Objective, images: Tensor) -> Tensor:
    return objective(images).cpu()


def _noise(model: nn.Module, count: int, size: int | tuple[int, int], config: AscentParams) -> Tensor:
    """Seeded noise with as many channels as the model's first convolution takes."""
    height, width = (size, size) if isinstance(size, int) else size
    channels = resolve_layer(model, first_conv_name(model)).in_channels
    generator = torch.Generator().manual_seed(config.seed)
    noise = config.init_scale * torch.randn(count, channels, height, width, generator=generator)
    return noise.to(model_device(model))


@dataclass(frozen=True)
class LayerMaximizations:
    """Per layer, the channel images (:class:`MaximizedChannels`) and how the channels were chosen."""

    layers: dict[str, MaximizedChannels]
    chosen: dict[str, str]

    def scores(self, row: int | None) -> dict[str, float]:
        return {f"median_activation_reached_{slug(layer)}": found.scores(None)["median_activation_reached"]
                for layer, found in self.layers.items()}  # fmt: skip

    def notes(self) -> list[str]:
        """How each layer's channels were chosen, and per layer the channel images that failed."""
        return list(self.chosen.values()) + [
            note for layer, found in self.layers.items() if (note := _failed(layer, found))
        ]


def _failed(layer: str, found: MaximizedChannels) -> str | None:
    """A note when the ascent left channels at a mean activation of 0 or less: their images are the
    starting noise after the regularizers, not what the channel detects (a ReLU's gradient at 0 is 0)."""
    failed = [
        int(channel) for channel, reached in zip(found.targets, found.final_activation, strict=True) if reached <= 0
    ]
    if not failed:
        return None
    return (f"{layer}: {len(failed)} of {len(found.targets)} channel images failed (channel"
            f"{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))}): the ascent from noise never raised "
            "their mean activation above 0 "
            "(whether they fire on real images is the note on how the channels were chosen), so those panels "
            "(labelled 'failed', in red) show noise, not what the channel detects")  # fmt: skip


@conforming
def explain_activation_maximization(
    model: nn.Module, batch: ExplainBatch, params: ActivationMaxParams
) -> LayerMaximizations:
    """The ``activation_maximization`` method: per layer, images (at the batch's input size) that
    maximally excite the given channels or the layer's most active live channels on the batch."""
    found, chosen = {}, {}
    for layer in params.resolved(model).layers or []:
        channels, chosen[layer] = (
            (params.channels, f"{layer}: channels {params.channels}, as configured")
            if params.channels is not None
            else most_active_channels(model, batch.inputs, layer, params.top_k)
        )
        found[layer] = maximize_channels(model, layer, channels, tuple(batch.inputs.shape[-2:]), params)
    return LayerMaximizations(found, chosen)


@conforming
def most_active_channels(model: nn.Module, images: Tensor, layer: str, top_k: int) -> tuple[list[int], str]:
    """The ``top_k`` channels of ``layer`` with the largest mean activation on ``images``, leaving out dead
    ones (never positive there: an image grown for them starts from, and stays at, nothing); and a
    sentence saying so."""
    maps = feature_maps(model, images, [layer])[layer].maps
    mean = maps.mean(dim=(0, 2, 3))
    alive = maps.amax(dim=(0, 2, 3)) > 0
    ranked = [c for c in mean.argsort(descending=True).tolist() if alive[c]][:top_k]
    dead = int((~alive).sum())
    chosen = f"{layer}: the {len(ranked)} most active of its {len(mean)} channels on the {len(images)} images explained"
    if not dead:
        return ranked, f"{chosen}; none is zero on all {len(images)} (a channel zero on one image may fire on another)"
    return ranked, (
        f"{chosen}; {dead} channel{'s' if dead != 1 else ''} never fire{'s' if dead == 1 else ''} on them and "
        f"{'is' if dead == 1 else 'are'} left out"
    )


@conforming
def explain_class_model(model: nn.Module, batch: ExplainBatch, params: ClassModelParams) -> Maximization:
    """The ``class_model`` method: per class the input that maximizes its score (Simonyan et al. 2014)."""
    found = class_model_images(model, range(batch.num_classes), tuple(batch.inputs.shape[-2:]), params)
    return replace(found, class_names=batch.class_names)
