"""The shape every convlens model shares: named stages run in order."""

from __future__ import annotations

from torch import Tensor, nn


def scaled(channels: int, width_factor: float) -> int:
    """A layer's channel count at ``width_factor`` times the paper's width (at least one channel)."""
    return max(1, round(channels * width_factor))


def check_width(width_factor: float, weights: object) -> None:
    """Torchvision's weights exist only at the paper's width: refuse them at any other."""
    if width_factor <= 0:
        raise ValueError(f"model.width_factor={width_factor} must be positive (1.0: the paper's widths)")
    if weights is not None and width_factor != 1:
        raise ValueError(
            f"model.weights is set with model.width_factor={width_factor}: torchvision's weights are for "
            "width_factor=1.0; drop one of the two"
        )


#: The stages every convlens model has, as attributes, in the order ``forward`` runs them.
NAMED_STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4", "head")


class Staged(nn.Module):
    """Base class of the convlens models: ``forward`` runs ``stem, layer1..layer4, head`` in turn, so
    each stage's output is one hookable module output and stages can be addressed by name."""

    #: The deep activation explain methods look at by default: None means the last ``nn.ReLU`` of
    #: ``layer4``; a model whose stage output is not a ReLU's (GoogLeNet concatenates branches) names it.
    deep_feature_layer: str | None = None

    stem: nn.Module
    layer1: nn.Module
    layer2: nn.Module
    layer3: nn.Module
    layer4: nn.Module
    head: nn.Module

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return self.head(x)
