"""VGG-style CNN for 48x48 grayscale faces (FER2013), same conventions as the ResNet."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from convlens.models.staged import Staged
from convlens.models.vgg import vgg_stage


def _vgg_stage(in_channels: int, out_channels: int, convs: int, dropout: float) -> nn.Sequential:
    """A VGG stage without conv biases (BN follows), then dropout: halves the resolution."""
    stage = vgg_stage(in_channels, out_channels, convs, bias=False)
    stage.add_module("dropout", nn.Dropout(dropout))
    return stage


class FerCNN(Staged):
    """Four VGG stages (``widths``) on 48x48 input, then a two-layer classifier head.

    ``stem`` is the first conv + BN + ReLU (so filter grids show the input filters); the rest
    of stage 1 and stages 2-4 are ``layer1..layer4``. Each stage halves the resolution:
    48 -> 24 -> 12 -> 6 -> 3.
    """

    min_input_size = 16

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512),
        convs_per_stage: int = 2,
        hidden: int = 256,
        dropout: float = 0.3,
        head_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"model.widths must list 4 stage widths, got {list(widths)}")
        if convs_per_stage < 1:
            raise ValueError(f"model.convs_per_stage must be >= 1, got {convs_per_stage}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(widths[0]))
        self.stem.add_module("relu", nn.ReLU())
        self.layer1 = _vgg_stage(widths[0], widths[0], convs_per_stage - 1, dropout)
        self.layer2 = _vgg_stage(widths[0], widths[1], convs_per_stage, dropout)
        self.layer3 = _vgg_stage(widths[1], widths[2], convs_per_stage, dropout)
        self.layer4 = _vgg_stage(widths[2], widths[3], convs_per_stage, dropout)
        self.head = nn.Sequential()
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1))
        self.head.add_module("flatten", nn.Flatten())
        self.head.add_module("fc1", nn.Linear(widths[3], hidden))
        self.head.add_module("relu", nn.ReLU())
        self.head.add_module("dropout", nn.Dropout(head_dropout))
        self.head.add_module("fc2", nn.Linear(hidden, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
