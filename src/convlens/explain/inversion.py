"""Feature inversion (Mahendran & Vedaldi 2015): which images does a layer consider equal to this one?

Captum has no feature inversion, so the optimization is written here: starting from noise, Adam
minimizes ``||phi(x) - phi0||^2 / ||phi0||^2 + alpha_weight * mean|x|^alpha + tv_weight * TV_beta(x)``
per image. Each image's loss depends on that image only, so a batch inverts its images independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics.functional import pearson_corrcoef

from convlens.explain.method import ExplainBatch, FeatureLayersParams, at_least
from convlens.models.conventions import conforming
from convlens.models.layers import eval_mode, layer_output, model_device, resolve_layer
from convlens.text import slug


@dataclass(frozen=True)
class InversionParams(FeatureLayersParams):
    """Optimization and prior settings; weights are for normalized inputs (pixels of order 1).

    ``images``: the first image of each of the first N classes is inverted from each of ``layers``.
    """

    images: int = 1
    steps: int = 128
    lr: float = 0.05
    tv_weight: float = 0.05
    beta: float = 2.0
    alpha_weight: float = 1e-3
    alpha: float = 6.0
    init_scale: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        at_least("steps", self.steps, 1)


@dataclass(frozen=True)
class Inversion:
    """Inverted images (B, C, H, W) and per-image loss histories (CPU tensors).

    ``feature_loss``: (steps + 1, B) normalized feature distance, row 0 at the starting noise;
    ``loss``: (steps, B) the full objective, priors included; ``image_correlation``: (B,) Pearson
    correlation of each inverted image with its input over every pixel and channel, what the features
    kept of the image itself (a feature loss can fall far on a layer too coarse to hold the picture).
    """

    layer: str
    images: Tensor
    feature_loss: Tensor
    loss: Tensor
    image_correlation: Tensor


@conforming
def invert_features(
    model: nn.Module, images: Tensor, layer: str, config: InversionParams = InversionParams()
) -> Inversion:
    """Reconstruct ``images`` from the features of ``layer`` alone, from seeded noise."""
    resolve_layer(model, layer)
    device = model_device(model)
    with eval_mode(model):
        target = layer_output(model, images.to(device), layer).detach()
        start = _noise(images.shape, config, device)
        inverted, feature_loss, loss = _optimize(model, layer, target, start, config)
    correlation = pearson_corrcoef(inverted.flatten(1).T.cpu(), images.flatten(1).T.cpu())
    return Inversion(layer, inverted.cpu(), feature_loss.cpu(), loss.cpu(), correlation.reshape(-1))


def _optimize(
    model: nn.Module, layer: str, target: Tensor, start: Tensor, config: InversionParams
) -> tuple[Tensor, Tensor, Tensor]:
    image = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=config.lr)
    feature_losses, losses = [], []
    for _ in range(config.steps):
        feature_loss = _feature_loss(layer_output(model, image, layer), target)
        loss = feature_loss + _priors(image, config)
        optimizer.zero_grad()
        loss.sum().backward(inputs=[image])
        optimizer.step()
        feature_losses.append(feature_loss.detach())
        losses.append(loss.detach())
    with torch.no_grad():
        feature_losses.append(_feature_loss(layer_output(model, image, layer), target))
    return image.detach(), torch.stack(feature_losses), torch.stack(losses)


def _feature_loss(features: Tensor, target: Tensor) -> Tensor:
    """Squared distance to the target features divided by the target's squared norm, per image."""
    return (features - target).flatten(1).pow(2).sum(1) / target.flatten(1).pow(2).sum(1).clamp_min(1e-12)


def _priors(image: Tensor, config: InversionParams) -> Tensor:
    """Alpha-norm (keeps pixels in range) plus total variation (prefers piecewise-smooth images)."""
    alpha_norm = image.abs().pow(config.alpha).flatten(1).mean(1)
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    total_variation = (dx.pow(2) + dy.pow(2)).pow(config.beta / 2).flatten(1).mean(1)
    return config.alpha_weight * alpha_norm + config.tv_weight * total_variation


def _noise(shape: torch.Size, config: InversionParams, device: torch.device) -> Tensor:
    generator = torch.Generator().manual_seed(config.seed)
    return (config.init_scale * torch.randn(shape, generator=generator)).to(device)


#: A layer's features are matched when the feature loss fell by at least this share of its start.
MATCHED = 0.5
#: An inverted image correlating less than this with its input shows little of it (Pearson, every pixel).
RESEMBLES = 0.3


@dataclass(frozen=True)
class Inversions:
    """One :class:`Inversion` per layer; ``scores`` says how far each image's feature loss fell and how
    much the inverted image correlates with the input, ``notes`` where that disagrees."""

    layers: dict[str, Inversion]

    def notes(self) -> list[str]:
        """Per layer whose features were matched (mean loss drop >= :data:`MATCHED`) by images that do not
        resemble their inputs (mean correlation < :data:`RESEMBLES`): the figure shows noise there, and why."""
        notes = []
        for layer, found in self.layers.items():
            drop = float(_loss_drops(found).mean())
            correlation = float(found.image_correlation.mean())
            if drop >= MATCHED and correlation < RESEMBLES:
                notes.append(  # the drop as the figure's caption gives it (its 0.996 stood beside "down 99.5%")
                    f"{layer}: the inverted images match the layer's features (mean feature loss drop {drop:#.3g}, "
                    f"at least {MATCHED:g}) yet correlate {correlation:.2f} with their inputs (under "
                    f"{RESEMBLES:g}): the layer keeps too little of the picture to rebuild it, so those panels "
                    "show an image the layer cannot tell from the input, not the input"
                )
        return notes

    def scores(self, row: int | None) -> dict[str, float]:
        if row is None:
            return {}
        scores = {}
        for layer, found in self.layers.items():
            scores[f"feature_loss_drop_{slug(layer)}"] = float(_loss_drops(found)[row])
            scores[f"image_correlation_{slug(layer)}"] = round(float(found.image_correlation[row]), 4)
        return scores


def _loss_drops(found: Inversion) -> Tensor:
    """Per image, the share by which the feature loss fell, rounded as the manifest stores it (4 places)."""
    return torch.round(1 - found.feature_loss[-1] / found.feature_loss[0], decimals=4)


@conforming
def explain_feature_inversion(model: nn.Module, batch: ExplainBatch, params: InversionParams) -> Inversions:
    """Mahendran & Vedaldi: each image rebuilt from noise to match each layer's features."""
    layers = params.resolved(model).layers or []
    return Inversions({layer: invert_features(model, batch.inputs, layer, params) for layer in layers})
