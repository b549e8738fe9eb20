"""The visualize stage: explain a trained run with the methods of ``conf/visualize/visualize.yaml``.

For each run directory: load the best checkpoint, pick test images (per class a correct and a
wrong example), run every configured method batched on the model's device, write
``visualizations/<method>/*.png`` and ``visualizations/manifest.json`` (one entry per figure, with
the time each took), and add the stage's time to ``provenance.json``.

Methods are registered in ``METHODS`` as functions ``(context, **parameters) -> list[Output]``
that compute their arrays and return one lazily drawn figure per output, so that the stage can
time computation and drawing alike. On the CPU the methods are shared out among ``workers`` forked
processes (see :func:`run_methods`). Their keyword parameters (with defaults) are the method's
settings in the config; unknown methods, parameters and layer names stop the stage before any work.
"""

from __future__ import annotations

import inspect
import json
import logging
import multiprocessing
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from convlens import provenance
from convlens.explain.activation_max import AscentConfig, class_model_images, maximize_channels
from convlens.explain.attribution import (
    contribution_map,
    gradient_x_input,
    guided_backprop_maps,
    guided_gradients,
    integrated_gradients,
    saliency_map,
    smoothgrad,
    vanilla_gradients,
)
from convlens.explain.cam import grad_cam, guided_grad_cam, layer_cam
from convlens.explain.deconvnet import compare_methods, project_top_channels, residual_vs_shortcut
from convlens.explain.features import feature_maps
from convlens.explain.filters import first_conv_filters
from convlens.explain.inversion import InversionConfig, invert_features
from convlens.explain.layers import capture_activations, default_feature_layers, last_relu, resolve_layer
from convlens.explain.lime import CPU_MODEL_BATCH_SIZE, lime_explanations
from convlens.explain.selection import Selection, select_test_images
from convlens.figures.attribution import Caption, gradient_images_figure, map_figure
from convlens.figures.cam import cam_figure, guided_grad_cam_figure
from convlens.figures.features import channel_activations_figure, feature_maps_figure
from convlens.figures.filters import filter_channels_figure, filter_grid_figure
from convlens.figures.lime import lime_figure
from convlens.figures.reconstruction import image_grid_figure, inversion_figure
from convlens.rundir import TrainedRun, load_run, resolve_runs

log = logging.getLogger(__name__)

VISUALIZATIONS = "visualizations"
MANIFEST = "manifest.json"
#: Parameter names that hold layer names; they are checked against the model before anything runs.
LAYER_PARAMETERS = ("layer", "layers", "block")
Draw = Callable[[int, Caption], Figure]


class NotApplicable(Exception):
    """Raised by a method that cannot apply to this model; its message, the reason, goes to the manifest."""


@dataclass(frozen=True)
class Chosen:
    """The selected test images: model input (K, C, H, W), display images (K, H, W, C) in [0, 1],
    the model's verdicts, the class each image is explained for and, for synthetic data, the
    ground-truth masks (K, H, W) of the class-defining region at input resolution."""

    inputs: Tensor
    display: np.ndarray
    selection: Selection
    targets: Tensor
    class_names: list[str]
    masks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.inputs)

    def record(self, position: int) -> dict[str, Any]:
        """Manifest fields of one image."""
        selection = self.selection
        return {
            "class": self.class_names[int(self.targets[position])],
            "true_label": self.class_names[int(selection.labels[position])],
            "predicted_label": self.class_names[int(selection.predictions[position])],
            "confidence": round(float(selection.confidences[position]), 4),
            "image_index": int(selection.indices[position]),
        }

    def caption(self, position: int, method: str, layer: str | None, explains: bool) -> Caption:
        record = self.record(position)
        return Caption(method, record["class"], record["true_label"], record["predicted_label"],
                       record["confidence"], layer, explains)  # fmt: skip

    def first_per_class(self, count: int) -> list[int]:
        """Positions of the first ``count`` chosen images of each true class (the correct one first)."""
        labels = self.selection.labels.tolist()
        return [p for p, label in enumerate(labels) if labels[:p].count(label) < count]

    def stem(self, position: int) -> str:
        """File name stem: true class and test-set index, e.g. ``happy_012``."""
        label = self.class_names[int(self.selection.labels[position])]
        return f"{slug(label)}_{int(self.selection.indices[position]):03d}"


@dataclass(frozen=True)
class Output:
    """One figure to write: ``file`` relative to ``visualizations/``, drawn lazily by ``draw``.

    ``position`` is the image in :class:`Chosen` it shows (None for figures of the model alone,
    such as filter grids); ``scores`` are extra numbers for its manifest entry.
    """

    file: str
    draw: Callable[[], Figure]
    position: int | None = None
    layer: str | list[str] | None = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What every method gets: the run, its model (eval mode, on ``device``) and the chosen images."""

    run: TrainedRun
    model: nn.Module
    chosen: Chosen
    device: torch.device

    def per_image(
        self,
        method: str,
        draw: Draw,
        positions: Sequence[int] | None = None,
        layer: str | list[str] | None = None,
        explains: bool = True,
        scores: Sequence[dict[str, float]] | None = None,
    ) -> list[Output]:
        """One output per image at ``positions`` (default: all chosen), ``<method>/<stem>[_<layer>].png``.

        ``draw(row, caption)`` gets the image's row in ``positions`` and its caption; ``explains``
        says whether the figure explains a class (else its title only describes the image).
        """
        positions = range(len(self.chosen)) if positions is None else positions
        title = METHOD_TITLES.get(method, method)
        single = layer if isinstance(layer, str) else None
        suffix = f"_{slug(single)}" if single else ""
        return [
            Output(
                f"{method}/{self.chosen.stem(p)}{suffix}.png",
                partial(draw, row, self.chosen.caption(p, title, single, explains)),
                position=p,
                layer=layer,
                scores=scores[row] if scores else {},
            )
            for row, p in enumerate(positions)
        ]

    def per_image_and_layer(
        self, method: str, draw: Callable[[str, int, Caption], Figure], positions: Sequence[int], layers: Sequence[str]
    ) -> list[Output]:
        """:meth:`per_image` for each of ``layers``, for figures that describe an image (not a class)."""
        outputs = [self.per_image(method, partial(draw, layer), positions, layer, explains=False) for layer in layers]
        return [output for per_layer in outputs for output in per_layer]

    def first_images(self, count: int) -> list[int]:
        """Positions of the first chosen image of each of the first ``count`` classes."""
        return self.chosen.first_per_class(1)[:count]

    def mask_scores(self, maps: np.ndarray, positions: Sequence[int] | None = None) -> list[dict[str, float]] | None:
        """:func:`mask_scores` of the maps of the images at ``positions`` (default: all chosen);
        None for datasets without ground-truth masks."""
        if self.chosen.masks is None:
            return None
        return mask_scores(maps, self.chosen.masks[list(range(len(self.chosen)) if positions is None else positions)])


def mask_scores(maps: np.ndarray, masks: np.ndarray) -> list[dict[str, float]]:
    """Per image, the share of a non-negative (H, W) map's mass inside the ground-truth mask
    (the "energy-based pointing game"), next to the mask's share of the image: what a uniform map
    would score, so the two together say how much better than chance the map points."""
    energy = (maps * masks).sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)
    return [{"mask_energy": round(float(e), 4), "mask_area": round(float(m.mean()), 4)}
            for e, m in zip(energy, masks, strict=True)]  # fmt: skip


def slug(text: str) -> str:
    """``'Horizontal stripes'`` -> ``'horizontal_stripes'``: safe in file names."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def hwc(images: Tensor) -> np.ndarray:
    """(..., C, H, W) tensor -> (..., H, W, C) numpy array for matplotlib."""
    return images.movedim(-3, -1).numpy()


def _layers(ctx: Context, layers: Sequence[str] | None) -> list[str]:
    """The given layers, or an early and a deep one: the stem ReLU and the conv5_x output."""
    return list(layers) if layers else default_feature_layers(ctx.model)


# --- filters and feature maps ----------------------------------------------------------------------


def filters(ctx: Context) -> list[Output]:
    """First-conv filters as images (RGB or gray) and per input channel, each filter scaled alone."""
    found = first_conv_filters(ctx.model)
    title = f"{METHOD_TITLES['filters']}: {found.layer}, {len(found.signed)} filters"
    signed = found.signed.numpy()
    outputs = []
    if found.images is not None:
        images = found.images.numpy()
        outputs.append(Output(f"filters/{slug(found.layer)}_images.png", partial(filter_grid_figure, images, title),
                              layer=found.layer))  # fmt: skip
    draw = partial(filter_channels_figure, signed, f"{title}, per input channel")
    return [*outputs, Output(f"filters/{slug(found.layer)}_channels.png", draw, layer=found.layer)]


def feature_map_grids(ctx: Context, layers: Sequence[str] | None = None, top_k: int = 8, images: int = 1,
                      shown: int = 16) -> list[Output]:  # fmt: skip
    """Feature maps of ``layers`` for the first ``images`` images: the ``top_k`` channels by mean
    activation first, ``shown`` channels in all."""
    positions = ctx.first_images(images)
    found = feature_maps(ctx.model, ctx.chosen.inputs[positions], _layers(ctx, layers), top_k)
    display = ctx.chosen.display[positions]

    def draw(layer: str, row: int, caption: Caption) -> Figure:
        top = found[layer].top_channels[row].tolist()
        order = top + [c for c in range(found[layer].maps.shape[1]) if c not in top]
        return feature_maps_figure(found[layer].maps[row].numpy(), caption.title(), order[: max(top_k, shown)],
                                   display[row])  # fmt: skip

    return ctx.per_image_and_layer("feature_maps", draw, positions, list(found))


def activation_charts(
    ctx: Context, layers: Sequence[str] | None = None, top_k: int = 8, images: int = 1
) -> list[Output]:
    """Mean activation per channel of ``layers`` as bars, the ``top_k`` channels highlighted."""
    positions = ctx.first_images(images)
    found = feature_maps(ctx.model, ctx.chosen.inputs[positions], _layers(ctx, layers), top_k)

    def draw(layer: str, row: int, caption: Caption) -> Figure:
        maps = found[layer]
        return channel_activations_figure(maps.mean_activation[row].numpy(), caption.title(),
                                          maps.top_channels[row].tolist())  # fmt: skip

    return ctx.per_image_and_layer("activation_chart", draw, positions, list(found))


# --- reconstructions and synthesized images --------------------------------------------------------


def deconvnet(ctx: Context, layers: Sequence[str] | None = None, top_k: int = 4, images: int = 1) -> list[Output]:
    """Deconvnet projections (Zeiler & Fergus) of each image's ``top_k`` most active channels."""
    positions = ctx.first_images(images)
    inputs, display = ctx.chosen.inputs[positions], ctx.chosen.display[positions]
    projections = {layer: project_top_channels(ctx.model, inputs, layer, top_k, "deconvnet")
                   for layer in _layers(ctx, layers)}  # fmt: skip

    def draw(layer: str, row: int, caption: Caption) -> Figure:
        found = projections[layer]
        panels = {f"channel {c}": hwc(found.images[row, j]) for j, c in enumerate(found.channels[row].tolist())}
        return gradient_images_figure(display[row], panels, caption)

    return ctx.per_image_and_layer("deconvnet", draw, positions, list(projections))


def deconvnet_paths(ctx: Context, block: str | None = None, images: int = 1) -> list[Output]:
    """A residual block's top channel projected back through both paths, the residual path only and
    the shortcut only (default block: the model's last; plain CNNs have none and get no figure)."""
    block = block or _last_residual_block(ctx.model)
    if block is None:
        name = type(ctx.model).__name__
        raise NotApplicable(f"{name} has no residual block, so there is no shortcut path to compare")
    positions = ctx.first_images(images)
    paths = residual_vs_shortcut(ctx.model, ctx.chosen.inputs[positions], block)
    display = ctx.chosen.display[positions]
    names = {"full": "both paths", "residual": "residual path only", "shortcut": "shortcut only"}

    def draw(row: int, caption: Caption) -> Figure:
        return gradient_images_figure(display[row], {names[k]: hwc(v[row]) for k, v in paths.items()}, caption)

    return ctx.per_image("deconvnet_paths", draw, positions, block, explains=False)


def _last_residual_block(model: nn.Module) -> str | None:
    blocks = [name for name, module in model.named_modules() if hasattr(module, "shortcut")]
    return blocks[-1] if blocks else None


def backprop_reconstruction(ctx: Context, layers: Sequence[str] | None = None, images: int = 1) -> list[Output]:
    """Each layer's most active channel reconstructed by plain backprop (its gradient w.r.t. the input)."""
    return _reconstruction(ctx, "backprop_reconstruction", "gradient", _layers(ctx, layers), images)


def guided_reconstruction(ctx: Context, layers: Sequence[str] | None = None, images: int = 1) -> list[Output]:
    """Each layer's most active channel reconstructed by guided backprop."""
    return _reconstruction(ctx, "guided_reconstruction", "guided_backprop", _layers(ctx, layers), images)


def _reconstruction(ctx: Context, method: str, rule: str, layers: list[str], images: int) -> list[Output]:
    positions = ctx.first_images(images)
    inputs, display = ctx.chosen.inputs[positions], ctx.chosen.display[positions]
    channels = {layer: feature_maps(ctx.model, inputs, [layer], 1)[layer].top_channels[:, 0] for layer in layers}
    found = {layer: compare_methods(ctx.model, inputs, layer, channels[layer], methods=(rule,))[rule]
             for layer in layers}  # fmt: skip

    def draw(row: int, caption: Caption) -> Figure:
        panels = {f"{layer} ch {int(channels[layer][row])}": hwc(found[layer][row]) for layer in layers}
        return gradient_images_figure(display[row], panels, caption)

    return ctx.per_image(method, draw, positions, layers, explains=False)


def feature_inversion(
    ctx: Context, layers: Sequence[str] | None = None, images: int = 1, steps: int = 128, lr: float = 0.05,
    tv_weight: float = 0.05, alpha_weight: float = 1e-3, seed: int = 0,
) -> list[Output]:  # fmt: skip
    """Mahendran & Vedaldi: each image rebuilt from noise to match an early and a deep layer's features."""
    positions, names = ctx.first_images(images), _layers(ctx, layers)
    config = InversionConfig(steps=steps, lr=lr, tv_weight=tv_weight, alpha_weight=alpha_weight, seed=seed)
    inversions = {layer: invert_features(ctx.model, ctx.chosen.inputs[positions], layer, config) for layer in names}
    display = ctx.chosen.display[positions]

    def draw(row: int, caption: Caption) -> Figure:
        images_ = {layer: hwc(found.images[row]) for layer, found in inversions.items()}
        losses = {layer: found.feature_loss[:, row].numpy() for layer, found in inversions.items()}
        return inversion_figure(display[row], images_, losses, caption.title())

    drops = {slug(layer): 1 - found.feature_loss[-1] / found.feature_loss[0] for layer, found in inversions.items()}
    scores = [{f"feature_loss_drop_{layer}": round(float(drop[row]), 4) for layer, drop in drops.items()}
              for row in range(len(positions))]  # fmt: skip
    return ctx.per_image("feature_inversion", draw, positions, names, explains=False, scores=scores)


def activation_maximization(
    ctx: Context, layer: str | None = None, channels: Sequence[int] = tuple(range(8)), steps: int = 128,
    lr: float = 0.05, l2_weight: float = 1e-4, jitter: int = 2, blur_every: int = 4, seed: int = 0,
) -> list[Output]:  # fmt: skip
    """Inputs that maximally excite ``channels`` of ``layer`` (default: the conv5_x output), kept
    readable by jitter, blur and an L2 penalty."""
    layer = layer or last_relu(ctx.model, "layer4")
    config = AscentConfig(steps=steps, lr=lr, l2_weight=l2_weight, jitter=jitter, blur_every=blur_every, seed=seed)
    found = maximize_channels(ctx.model, layer, list(channels), tuple(ctx.chosen.inputs.shape[-2:]), config)
    reached = zip(found.targets.tolist(), found.final_activation.tolist(), strict=True)
    labels = [f"ch {c}: {a:.3g}" for c, a in reached]
    title = f"{METHOD_TITLES['activation_maximization']} @ {layer} (channel: mean activation reached)"
    draw = partial(image_grid_figure, hwc(found.images), labels, title)
    gain = float((found.final_activation / found.start_activation.abs().clamp_min(1e-12)).median())
    return [Output(f"activation_maximization/{slug(layer)}.png", draw, layer=layer,
                   scores={"median_activation_gain": round(gain, 2)})]  # fmt: skip


def class_models(
    ctx: Context, steps: int = 128, lr: float = 0.05, l2_weight: float = 1e-4, jitter: int = 2, blur_every: int = 4,
    seed: int = 0,
) -> list[Output]:  # fmt: skip
    """Class-model images (Simonyan et al. 2014): per class the input that maximizes its score."""
    names = ctx.chosen.class_names
    config = AscentConfig(steps=steps, lr=lr, l2_weight=l2_weight, jitter=jitter, blur_every=blur_every, seed=seed)
    found = class_model_images(ctx.model, range(len(names)), tuple(ctx.chosen.inputs.shape[-2:]), config)
    reached = zip(found.targets.tolist(), found.final_activation.tolist(), strict=True)
    labels = [f"{names[c]}: {a:.3g}" for c, a in reached]
    title = f"{METHOD_TITLES['class_model']} (class: logit reached)"
    return [Output("class_model/classes.png", partial(image_grid_figure, hwc(found.images), labels, title, 5))]


# --- gradient attributions (captum) ---------------------------------------------------------------


def saliency(ctx: Context) -> list[Output]:
    """Vanilla gradient saliency (Simonyan et al.): max |d score / d pixel| over channels."""
    maps = saliency_map(vanilla_gradients(ctx.model, ctx.chosen.inputs, ctx.chosen.targets)).numpy()
    display = ctx.chosen.display

    def draw(row: int, caption: Caption) -> Figure:
        return map_figure(display[row], {"saliency": maps[row]}, caption)

    return ctx.per_image("saliency", draw, scores=ctx.mask_scores(maps))


def guided_backprop(ctx: Context) -> list[Output]:
    """Guided backprop: colour gradients, grayscale saliency, positive and negative saliency."""
    maps = guided_backprop_maps(guided_gradients(ctx.model, ctx.chosen.inputs, ctx.chosen.targets))
    gradients, positive, negative = hwc(maps.gradients), hwc(maps.positive), hwc(maps.negative)
    grayscale, display = maps.grayscale.numpy(), ctx.chosen.display

    def draw(row: int, caption: Caption) -> Figure:
        panels = {"colour gradients": gradients[row], "grayscale saliency": grayscale[row],
                  "positive saliency": positive[row], "negative saliency": negative[row]}  # fmt: skip
        return gradient_images_figure(display[row], panels, caption)

    return ctx.per_image("guided_backprop", draw, scores=ctx.mask_scores(grayscale))


def smoothgrad_maps(
    ctx: Context, samples: int = 25, noise_level: float = 0.15, samples_batch_size: int = 25, seed: int = 0
) -> list[Output]:
    """SmoothGrad on vanilla and on guided gradients, shown as saliency maps."""
    if samples < 25:
        raise ValueError(f"visualize.params.smoothgrad.samples={samples}: SmoothGrad needs at least 25 noise samples")
    settings = {"samples": samples, "noise_level": noise_level, "samples_batch_size": samples_batch_size, "seed": seed}
    inputs, targets, display = ctx.chosen.inputs, ctx.chosen.targets, ctx.chosen.display
    vanilla = saliency_map(smoothgrad(ctx.model, inputs, targets, **settings)).numpy()
    guided = saliency_map(smoothgrad(ctx.model, inputs, targets, guided=True, **settings)).numpy()

    def draw(row: int, caption: Caption) -> Figure:
        return map_figure(display[row], {"SmoothGrad": vanilla[row], "guided SmoothGrad": guided[row]}, caption)

    return ctx.per_image("smoothgrad", draw, scores=ctx.mask_scores(vanilla))


def gradient_times_input(ctx: Context) -> list[Output]:
    """Gradient x input, summed over channels: each pixel's signed first-order contribution."""
    maps = contribution_map(gradient_x_input(ctx.model, ctx.chosen.inputs, ctx.chosen.targets)).numpy()
    return _signed_outputs(ctx, "gradient_x_input", "gradient x input", maps)


def integrated(ctx: Context, steps: int = 32, internal_batch_size: int = 256, baseline: str = "black") -> list[Output]:
    """Integrated Gradients from a ``black`` image or the ``mean`` image (zero model input)."""
    attributions = integrated_gradients(
        ctx.model, ctx.chosen.inputs, ctx.chosen.targets,
        baselines=_baseline(ctx, baseline), steps=steps, internal_batch_size=internal_batch_size,
    )  # fmt: skip
    return _signed_outputs(ctx, "integrated_gradients", "integrated gradients", contribution_map(attributions).numpy())


def _signed_outputs(ctx: Context, method: str, name: str, maps: np.ndarray) -> list[Output]:
    display = ctx.chosen.display

    def draw(row: int, caption: Caption) -> Figure:
        return map_figure(display[row], {name: maps[row]}, caption, signed=True)

    return ctx.per_image(method, draw, scores=ctx.mask_scores(np.clip(maps, 0, None)))


def _baseline(ctx: Context, name: str) -> Tensor | float:
    if name == "mean":
        return 0.0
    if name == "black":
        shape = ctx.run.datamodule.split("test").images.shape[1:]
        return ctx.run.datamodule.preprocess(torch.zeros((1, *shape), dtype=torch.uint8))
    raise ValueError(f"visualize.params.integrated_gradients.baseline={name!r}; choose 'black' or 'mean'")


# --- class activation maps (grad-cam) -------------------------------------------------------------

STAGES = ("layer2", "layer3", "layer4")


def grad_cams(ctx: Context, layers: Sequence[str] = STAGES) -> list[Output]:
    """Grad-CAM of each layer, upsampled bilinearly and laid over the image."""
    return _cam_outputs(ctx, "grad_cam", grad_cam(ctx.model, ctx.chosen.inputs, ctx.chosen.targets, list(layers)))


def layer_cams(ctx: Context, layers: Sequence[str] = STAGES) -> list[Output]:
    """LayerCAM of each layer, upsampled bilinearly and laid over the image."""
    return _cam_outputs(ctx, "layer_cam", layer_cam(ctx.model, ctx.chosen.inputs, ctx.chosen.targets, list(layers)))


def guided_grad_cams(ctx: Context, layers: Sequence[str] = STAGES) -> list[Output]:
    """Guided Grad-CAM (guided backprop x Grad-CAM) of each layer, as gradient images."""
    maps = guided_grad_cam(ctx.model, ctx.chosen.inputs, ctx.chosen.targets, list(layers))
    images = {name: hwc(values) for name, values in _with_sizes(ctx, maps).items()}
    display = ctx.chosen.display

    def draw(row: int, caption: Caption) -> Figure:
        return guided_grad_cam_figure(display[row], {name: m[row] for name, m in images.items()}, caption)

    return ctx.per_image("guided_grad_cam", draw, layer=list(layers))


def _cam_outputs(ctx: Context, method: str, cams: Mapping[str, Tensor]) -> list[Output]:
    maps = {name: values.numpy() for name, values in _with_sizes(ctx, cams).items()}
    display = ctx.chosen.display
    scores = [{} for _ in range(len(ctx.chosen))]
    for layer, values in cams.items():
        for row, score in enumerate(ctx.mask_scores(values.numpy()) or []):
            scores[row] |= {f"mask_energy_{slug(layer)}": score["mask_energy"], "mask_area": score["mask_area"]}

    def draw(row: int, caption: Caption) -> Figure:
        return cam_figure(display[row], {name: m[row] for name, m in maps.items()}, caption)

    return ctx.per_image(method, draw, layer=list(cams), scores=scores)


def _with_sizes(ctx: Context, maps: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys ``layer (HxW)``: the resolution each CAM was computed at (a 1x1 map has no location)."""
    with capture_activations(ctx.model, list(maps)) as captured, torch.no_grad():
        ctx.model(ctx.chosen.inputs[:1].to(ctx.device))
    return {f"{layer} ({captured[layer].shape[-2]}x{captured[layer].shape[-1]})": m for layer, m in maps.items()}


# --- LIME (lime) -----------------------------------------------------------------------------------


def lime_maps(
    ctx: Context,
    num_samples: int = 1000,
    batch_size: int = 256,
    pixels_per_segment: int = 64,
    compactness: float = 20.0,
    sigma: float = 1.0,
    hide_color: float = 0.0,
    num_features: int = 5,
    seed: int = 0,
    per_class: int | None = 1,
    model_batch_size: int | None = None,
) -> list[Output]:
    """LIME for the first ``per_class`` chosen images of every class (None: all; each costs
    ``num_samples`` forward passes): superpixels, their weights, the top ones for and against.
    ``model_batch_size`` None means ``CPU_MODEL_BATCH_SIZE`` on a CPU and the whole batch on a GPU."""
    if batch_size < 128:
        raise ValueError(f"visualize.params.lime.batch_size={batch_size}: use at least 128 to keep the model busy")
    positions = list(range(len(ctx.chosen))) if per_class is None else ctx.chosen.first_per_class(per_class)
    explanations = lime_explanations(
        ctx.model, ctx.chosen.inputs[positions], ctx.chosen.targets[positions],
        num_samples=num_samples, batch_size=batch_size, pixels_per_segment=pixels_per_segment,
        compactness=compactness, sigma=sigma, hide_color=hide_color, num_features=num_features, seed=seed,
        model_batch_size=model_batch_size or (CPU_MODEL_BATCH_SIZE if ctx.device.type == "cpu" else None),
    )  # fmt: skip
    display = ctx.chosen.display[positions]

    def draw(row: int, caption: Caption) -> Figure:
        e = explanations[row]
        return lime_figure(display[row], e.segments, e.weight_map(), e.positive_mask, e.negative_mask,
                           e.top_weights, caption)  # fmt: skip

    positive = np.stack([e.positive_mask for e in explanations]).astype(float)
    return ctx.per_image("lime", draw, positions, scores=ctx.mask_scores(positive, positions))


# --- the registry ----------------------------------------------------------------------------------

MethodFn = Callable[..., list[Output]]
#: Method name (config, manifest, folder) -> function and figure title, in the default order.
METHODS: dict[str, MethodFn] = {
    "filters": filters,
    "feature_maps": feature_map_grids,
    "activation_chart": activation_charts,
    "deconvnet": deconvnet,
    "deconvnet_paths": deconvnet_paths,
    "backprop_reconstruction": backprop_reconstruction,
    "guided_reconstruction": guided_reconstruction,
    "feature_inversion": feature_inversion,
    "activation_maximization": activation_maximization,
    "class_model": class_models,
    "saliency": saliency,
    "guided_backprop": guided_backprop,
    "smoothgrad": smoothgrad_maps,
    "gradient_x_input": gradient_times_input,
    "integrated_gradients": integrated,
    "grad_cam": grad_cams,
    "guided_grad_cam": guided_grad_cams,
    "layer_cam": layer_cams,
    "lime": lime_maps,
}
METHOD_TITLES: dict[str, str] = {
    "filters": "First-layer filters",
    "feature_maps": "Feature maps",
    "activation_chart": "Mean activation per channel",
    "deconvnet": "Deconvnet (top channels)",
    "deconvnet_paths": "Deconvnet: residual vs shortcut path",
    "backprop_reconstruction": "Backprop reconstruction",
    "guided_reconstruction": "Guided backprop reconstruction",
    "feature_inversion": "Feature inversion",
    "activation_maximization": "Activation maximization",
    "class_model": "Class-model images",
    "saliency": "Saliency (vanilla gradient)",
    "guided_backprop": "Guided backprop",
    "smoothgrad": "SmoothGrad",
    "gradient_x_input": "Gradient x input",
    "integrated_gradients": "Integrated Gradients",
    "grad_cam": "Grad-CAM",
    "guided_grad_cam": "Guided Grad-CAM",
    "layer_cam": "LayerCAM",
    "lime": "LIME",
}


# --- the stage -------------------------------------------------------------------------------------


def method_parameters(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters a method runs with: its defaults updated by ``given`` (unknown names rejected)."""
    if name not in METHODS:
        raise ValueError(f"unknown visualization method {name!r}; valid methods: {', '.join(METHODS)}")
    defaults = {key: p.default for key, p in list(inspect.signature(METHODS[name]).parameters.items())[1:]}
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise ValueError(f"visualize.params.{name}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
    return {key: _plain(value) for key, value in {**defaults, **(given or {})}.items()}


def _plain(value: Any) -> Any:
    """OmegaConf containers and tuples as plain JSON-able lists/dicts."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return list(value) if isinstance(value, tuple) else value


def plan(methods: Sequence[str], params: Mapping[str, Any], model: nn.Module) -> dict[str, dict[str, Any]]:
    """Check every method, parameter and layer name before any work: ``{method: parameters}``."""
    planned = {name: method_parameters(name, (params or {}).get(name)) for name in methods}
    for parameters in planned.values():
        for key in LAYER_PARAMETERS:
            value = parameters.get(key)
            for layer in [value] if isinstance(value, str) else value or []:
                resolve_layer(model, layer)
    return planned


def choose_images(run: TrainedRun, model: nn.Module, selection: Mapping[str, Any]) -> Chosen:
    """Deterministic test images (see :mod:`convlens.explain.selection`) with the class each is
    explained for: ``explain: predicted`` (what the model saw) or ``true``."""
    explain = selection.get("explain", "predicted")
    if explain not in ("predicted", "true"):
        raise ValueError(f"visualize.selection.explain={explain!r}; choose 'predicted' or 'true'")
    datamodule = run.datamodule
    split = datamodule.split(selection.get("split", "test"))
    chosen = select_test_images(
        model, split.images, split.labels, datamodule.preprocess,
        correct_per_class=selection.get("correct_per_class", 1), wrong_per_class=selection.get("wrong_per_class", 1),
        max_candidates=selection.get("max_candidates"),
    )  # fmt: skip
    if len(chosen) == 0:
        raise ValueError("visualize.selection chose no images; raise correct_per_class or wrong_per_class")
    inputs = datamodule.preprocess(split.images[chosen.indices]).cpu()
    display = datamodule.to_display(inputs).movedim(1, -1).numpy()
    targets = chosen.predictions if explain == "predicted" else chosen.labels
    masks = None if split.masks is None else _resize_masks(split.masks[chosen.indices], inputs.shape[-2:])
    return Chosen(inputs, display, chosen, targets, run.class_names, masks)


def _resize_masks(masks: Tensor, size: torch.Size) -> np.ndarray:
    """Ground-truth masks (K, h, w) to the model's input size (nearest neighbour) as floats."""
    return F.interpolate(masks[:, None].float(), size=tuple(size), mode="nearest")[:, 0].numpy()


def write_outputs(outputs: Sequence[Output], out_dir: Path) -> list[float]:
    """Draw and save each figure; the seconds each took."""
    seconds = []
    for output in outputs:
        started = time.perf_counter()
        path = out_dir / output.file
        path.parent.mkdir(parents=True, exist_ok=True)
        output.draw().savefig(path)
        seconds.append(time.perf_counter() - started)
    return seconds


def entry(method: str, output: Output, chosen: Chosen, parameters: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A manifest entry; the image fields are null for figures of the model alone."""
    image = dict.fromkeys(("class", "true_label", "predicted_label", "confidence", "image_index"))
    if output.position is not None:
        image = chosen.record(output.position)
    return {"method": method, "layer": output.layer, **image, "file": output.file, "parameters": parameters,
            "seconds": round(seconds, 4), **output.scores}  # fmt: skip


@dataclass(frozen=True)
class MethodResult:
    """What one method left for the manifest: its run time, its figures, and why it drew none."""

    seconds: float
    entries: list[dict[str, Any]]
    skipped: str | None = None

    def summary(self, parameters: dict[str, Any]) -> dict[str, Any]:
        skipped = {"skipped": self.skipped} if self.skipped else {}
        return {"seconds": round(self.seconds, 3), "parameters": parameters, **skipped}


def run_method(ctx: Context, name: str, parameters: dict[str, Any], out_dir: Path) -> MethodResult:
    """Compute and draw one method. Each figure's seconds are its share of the method's computation
    plus its own drawing; a method that does not apply to the model is recorded with the reason."""
    started = time.perf_counter()
    try:
        outputs = METHODS[name](ctx, **parameters)
    except NotApplicable as reason:
        log.info("%s: skipped, %s", name, reason)
        return MethodResult(time.perf_counter() - started, [], skipped=str(reason))
    compute = (time.perf_counter() - started) / max(len(outputs), 1)
    drawn = write_outputs(outputs, out_dir)
    total = time.perf_counter() - started
    log.info("%s: %d figures in %.1f s", name, len(outputs), total)
    entries = [entry(name, o, ctx.chosen, parameters, compute + s) for o, s in zip(outputs, drawn, strict=True)]
    return MethodResult(total, entries)


#: Methods that run hundreds of forward and backward passes: handed out first, so that the workers
#: finish together instead of one waiting for LIME at the end.
LONG_RUNNING = ("lime", "class_model", "activation_maximization", "smoothgrad", "feature_inversion")
#: What forked workers inherit (set just before the fork): the context, the plan and the output folder.
_forked_stage: tuple[Context, dict[str, dict[str, Any]], Path] | None = None


def run_methods(
    ctx: Context, planned: dict[str, dict[str, Any]], out_dir: Path, workers: int
) -> dict[str, MethodResult]:
    """Every planned method, in ``workers`` processes where that helps, results in plan order.

    The methods are independent and each runs on small batches, where a second torch thread gains
    little; a second process computing another method gains nearly 2x. Workers are forked, so they
    inherit the model and the chosen images without pickling; only the manifest entries come back.
    A GPU (which a forked process cannot use) or a platform without ``fork`` runs them in turn.
    """
    processes = min(workers, len(planned))
    if processes <= 1 or ctx.device.type != "cpu" or "fork" not in multiprocessing.get_all_start_methods():
        return {name: run_method(ctx, name, parameters, out_dir) for name, parameters in planned.items()}
    global _forked_stage
    _forked_stage = (ctx, planned, out_dir)
    order = sorted(planned, key=lambda name: LONG_RUNNING.index(name) if name in LONG_RUNNING else len(LONG_RUNNING))
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = dict(zip(order, pool.map(_run_forked_method, order, chunksize=1), strict=True))
    finally:
        _forked_stage = None
    return {name: results[name] for name in planned}


def _run_forked_method(name: str) -> MethodResult:
    assert _forked_stage is not None, "set by run_methods before the fork"
    ctx, planned, out_dir = _forked_stage
    return run_method(ctx, name, planned[name], out_dir)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def visualize_run(run_dir: str | Path, cfg: DictConfig) -> dict[str, Any]:
    """The stage for one run directory; returns the manifest it wrote.

    ``visualizations/`` is this stage's alone: it is emptied first, so no figure of an earlier
    configuration survives next to the new manifest.
    """
    started = time.perf_counter()
    with torch_threads(cfg.get("threads")):
        run = load_run(run_dir)
        ctx, planned = prepare(run, cfg)
        out_dir = Path(run.root) / VISUALIZATIONS
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        results = run_methods(ctx, planned, out_dir, cfg.get("workers") or 1)
    resolved = Path(run.root).resolve()
    manifest = {
        "run": f"{resolved.parent.name}/{resolved.name}",
        "seconds_total": round(time.perf_counter() - started, 2),
        "device": str(ctx.device),
        "images": len(ctx.chosen),
        "methods": {name: result.summary(planned[name]) for name, result in results.items()},
        "entries": [entry for result in results.values() for entry in result.entries],
    }  # fmt: skip
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    provenance.record_stage(run.root, "visualize", manifest["seconds_total"])
    log.info("%s: %d figures in %.1f s -> %s", manifest["run"], len(manifest["entries"]), manifest["seconds_total"],
             out_dir)  # fmt: skip
    return manifest


def prepare(run: TrainedRun, cfg: DictConfig) -> tuple[Context, dict[str, dict[str, Any]]]:
    """The model on its device (channels-last if configured), the checked plan and the chosen images."""
    device = resolve_device(cfg.get("device", "auto"))
    memory_format = torch.channels_last if cfg.get("channels_last", True) else torch.contiguous_format
    model = run.model.to(device=device, memory_format=memory_format).eval()
    planned = plan(list(cfg.methods), cfg.get("params") or {}, model)
    return Context(run, model, choose_images(run, model, cfg.get("selection") or {}), device), planned


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


def visualize(cfg: DictConfig) -> list[dict[str, Any]]:
    """``make visualize``: the runs named by ``run``/``experiment`` (default: every latest run)."""
    runs = resolve_runs(cfg.get("run"), cfg.get("experiment"), Path(cfg.get("outputs_dir", "outputs")))
    return [visualize_run(run_dir, cfg) for run_dir in runs]
