"""The shape every convlens model shares: named stages run in order."""

from __future__ import annotations

from torch import Tensor, nn

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
