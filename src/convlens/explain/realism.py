"""How convincing synthesized images are to the classifier (shared by the generator-prior methods of
:mod:`convlens.explain.generator`): its confidence in the intended class, whether a sample failed
outright, and realism as the Kernel Inception Distance (KID, Bińkowski et al. 2018) between a class's
synthesized images and real held-out images of that class, in features of the classifier itself: the
channel means of its ``layer3`` stage (KID's Inception features are likewise the spatial means of a
late convolutional stage).

KID rather than the distance to the nearest training image: a blank square lies as near some training
image as real faces do (1.17 vs 0.94 on ``demo_faces``), but no set of blank squares has the feature
distribution of a class. KID's estimate is unbiased at any set size (ours: ``samples`` images per
class), so a real set scores about 0 on average, not a positive number a ratio could be taken of: the
yardstick is therefore the spread of real sets' scores, the 90th percentile of the KID of random sets
of the same size of real held-out images. Measured on both demos (docs/generator.md): in every class
the ``layer3`` channel means put constant, noise, pixel-shuffled and pixel-space class-model sets 4.7x
or more above that yardstick. Not the penultimate features: activation maximization drives exactly
those towards the class, and there the faces' class-model gratings scored 0.3x the yardstick for one
class, as realistic as real faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics.image.kid import poly_mmd

from convlens.models.layers import capture_activations, eval_mode, model_device

#: The stage whose channel means are the realism features (every staged model has stem, layer1..layer4).
REALISM_LAYER = "layer3"
#: A sample each of whose channels varies less than this over positions (pixels in [0, 1]) is a constant
#: image: the chain collapsed (a flat colour too, whose channels differ from each other).
CONSTANT_STD = 0.02
#: A sample with more than this fraction of its pixels outside [0, 1] (by over one grey level) left the data range.
OUT_OF_RANGE_FRACTION = 0.01
#: Seeded subsets of the real pool averaged in one KID.
DRAWS = 20
#: Random sets of real held-out images whose KID makes the yardstick, and the percentile taken.
REAL_SETS = 50
REAL_QUANTILE = 0.9


@torch.no_grad()
def judge(model: nn.Module, inputs: Tensor, classes: Tensor, feature_layer: str) -> dict[str, Tensor]:
    """Confidence, logit and ``feature_layer`` features of model ``inputs`` (N) for ``classes`` (N)."""
    with eval_mode(model), capture_activations(model, [feature_layer]) as captured:
        logits = model(inputs.to(model_device(model)))
    rows, classes = torch.arange(len(inputs)), classes.to(logits.device)
    return {
        "confidence": logits.softmax(1)[rows, classes].cpu(),
        "logit": logits[rows, classes].cpu(),
        "features": channel_means(captured[feature_layer]).float().cpu(),
    }


def channel_means(activation: Tensor) -> Tensor:
    """Per image the mean of each channel over positions (N, C); a (N, D) activation as it is."""
    return activation.flatten(2).mean(2) if activation.ndim > 2 else activation


def failure(pixels: Tensor) -> str | None:
    """Why one sample (C, H, W), pixels not yet clamped to [0, 1], is no result: ``"constant"`` (the chain
    collapsed to a flat image), ``"out of range"`` (no image of the data has such pixels), else None."""
    outside = (pixels < -1 / 255) | (pixels > 1 + 1 / 255)
    if float(outside.float().mean()) > OUT_OF_RANGE_FRACTION:
        return "out of range"
    return "constant" if float(pixels.clamp(0, 1).flatten(1).std(1).max()) < CONSTANT_STD else None


def kid(fake: Tensor, pool: Tensor, generator: torch.Generator) -> float:
    """KID of the set ``fake`` (m >= 2, D) against real features ``pool`` (n >= m, D): torchmetrics'
    unbiased polynomial-kernel MMD averaged over ``DRAWS`` seeded m-subsets of the pool. Not its
    ``KernelInceptionDistance`` metric: that subsamples the (already small) fake set too and draws from
    the global random state, where a seed must repeat the figure."""
    draws = [poly_mmd(pool[torch.randperm(len(pool), generator=generator)[: len(fake)]], fake) for _ in range(DRAWS)]
    return float(torch.stack(draws).mean())


@dataclass(frozen=True)
class RealImages:
    """Features (M, D) and labels (M,) of real held-out images. Per class, alternate images form the
    ``pool`` every set is scored against and the ``own`` images whose random sets make the yardstick."""

    features: Tensor
    labels: Tensor

    def pool(self, label: int) -> Tensor:
        return self.features[self.labels == label][1::2]

    def own(self, label: int) -> Tensor:
        return self.features[self.labels == label][0::2]

    def realism(self, fake: Tensor, label: int, seed: int) -> float:
        """KID of a class's synthesized features ``fake`` (S, D) against real images of the class."""
        return kid(fake, self.pool(label), torch.Generator().manual_seed(seed))

    def yardstick(self, label: int, size: int, seed: int) -> float:
        """The ``REAL_QUANTILE`` of the KID of ``REAL_SETS`` random sets of ``size`` real images of the class."""
        own, generator = self.own(label), torch.Generator().manual_seed(seed)
        sets = [own[torch.randperm(len(own), generator=generator)[:size]] for _ in range(REAL_SETS)]
        scores = torch.tensor([kid(chosen, self.pool(label), generator) for chosen in sets])
        return float(scores.quantile(REAL_QUANTILE))

    def check(self, label: int, size: int) -> str | None:
        """Why the class has too few held-out images for sets of ``size``, or None."""
        found = min(len(self.own(label)), len(self.pool(label)))
        return None if found >= size else f"class {label} has {found} held-out images per half, fewer than {size}"
