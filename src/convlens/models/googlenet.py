"""GoogLeNet (Inception v1, Szegedy et al. 2015) with batch norm, layer shapes as torchvision's
``googlenet``, every layer a named module and every ReLU its own ``nn.ReLU``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from convlens.models.staged import Staged, check_width, scaled
from convlens.models.weights import load_pretrained

#: Inception modules per stage: in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection.
INCEPTIONS: dict[str, dict[str, tuple[int, int, int, int, int, int, int]]] = {
    "layer2": {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64)},
    "layer3": {
        "4a": (480, 192, 96, 208, 16, 48, 64),
        "4b": (512, 160, 112, 224, 24, 64, 64),
        "4c": (512, 128, 128, 256, 24, 64, 64),
        "4d": (512, 112, 144, 288, 32, 64, 64),
        "4e": (528, 256, 160, 320, 32, 128, 128),
    },
    "layer4": {"5a": (832, 256, 160, 320, 32, 128, 128), "5b": (832, 384, 192, 384, 48, 128, 128)},
}
#: How torchvision calls the convolutions of an Inception branch -> our names.
BRANCH_NAMES = {
    "branch1": "branch1",
    "branch2.0": "branch2.reduce",
    "branch2.1": "branch2.conv",
    "branch3.0": "branch3.reduce",
    "branch3.1": "branch3.conv",
    "branch4.1": "branch4.proj",
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """torchvision's ``BasicConv2d`` (conv without bias, BN with eps 1e-3) with its ReLU as a module."""
    block = nn.Sequential()
    block.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False))
    block.add_module("bn", nn.BatchNorm2d(out_channels, eps=0.001))
    block.add_module("relu", nn.ReLU())
    return block


def _reduce_conv(in_channels: int, reduced: int, out_channels: int) -> nn.Sequential:
    block = nn.Sequential()
    block.add_module("reduce", conv_bn_relu(in_channels, reduced, 1))
    block.add_module("conv", conv_bn_relu(reduced, out_channels, 3))
    return block


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1; 1x1 reduce then 3x3; the same again (torchvision,
    whose ImageNet weights were trained that way, uses 3x3 where the paper has 5x5); 3x3 max-pool
    then a 1x1 projection."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, proj: int):
        super().__init__()
        self.branch1 = conv_bn_relu(in_channels, ch1x1, 1)
        self.branch2 = _reduce_conv(in_channels, ch3x3red, ch3x3)
        self.branch3 = _reduce_conv(in_channels, ch5x5red, ch5x5)
        self.branch4 = nn.Sequential()
        self.branch4.add_module("pool", nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True))
        self.branch4.add_module("proj", conv_bn_relu(in_channels, proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TorchvisionGoogLeNetInput(nn.Module):
    """Input normalised with ImageNet's mean and std -> normalised with mean = std = 0.5, what
    torchvision's GoogLeNet weights (ported from TensorFlow) expect (its ``transform_input``)."""

    def __init__(self) -> None:
        super().__init__()
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("scale", (std / 0.5).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean - 0.5) / 0.5).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class GoogLeNet(Staged):
    """GoogLeNet for ``in_channels``-channel images and ``num_classes`` classes, without the
    auxiliary classifiers (they only help training from scratch; torchvision's are dropped on load).

    Stages, at the resolutions of ResNet's (56, 56, 28, 14, 7 px at 224): ``stem`` (7x7/2 conv,
    max-pool), ``layer1`` (1x1 and 3x3 conv), ``layer2`` (max-pool, inception 3a-3b), ``layer3``
    (max-pool, 4a-4e), ``layer4`` (max-pool, 5a-5b), ``head`` (global average pool, dropout, fc).
    The max-pools round up (torchvision's ``ceil_mode``), so the network is torchvision's at every
    size down to ``min_input_size`` = 15 px (32 px give ``layer4`` 1x1). ``width_factor`` scales
    every branch's channels (1.0: torchvision's). Parameter counts equal torchvision's
    ``googlenet(aux_logits=False)``, and ``weights`` (a torchvision ``googlenet``
    file or weights name) loads into it; set ``transform_input`` with torchvision's ImageNet
    weights and ImageNet-normalised RGB input, as torchvision does.
    """

    deep_feature_layer = "layer4"  # the concatenated output of inception 5b, not one branch's ReLU

    min_input_size = 15
    torchvision_arch = "googlenet"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
        transform_input: bool = False,
        weights: str | Path | None = None,
        width_factor: float = 1.0,
    ) -> None:
        super().__init__()
        check_width(width_factor, weights)
        if transform_input and in_channels != 3:
            raise ValueError(f"model.transform_input needs RGB input, but model.in_channels={in_channels}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem = nn.Sequential()
        if transform_input:
            self.stem.add_module("transform", TorchvisionGoogLeNetInput())
        c64, c192 = scaled(64, width_factor), scaled(192, width_factor)
        self.stem.add_module("conv1", conv_bn_relu(in_channels, c64, 7, 2))
        self.stem.add_module("pool", _pool(3))
        self.layer1 = nn.Sequential()
        self.layer1.add_module("conv2", conv_bn_relu(c64, c64, 1))
        self.layer1.add_module("conv3", conv_bn_relu(c64, c192, 3))
        channels = c192
        for stage, inceptions in INCEPTIONS.items():
            self.add_module(stage, nn.Sequential())
            getattr(self, stage).add_module("pool", _pool(2 if stage == "layer4" else 3))
            for name, (_, *branches) in inceptions.items():
                widths = [scaled(branch, width_factor) for branch in branches]
                getattr(self, stage).add_module(f"inception{name}", Inception(channels, *widths))
                channels = widths[0] + widths[2] + widths[4] + widths[5]  # what the four branches output
        self.head = nn.Sequential()
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1))
        self.head.add_module("flatten", nn.Flatten())
        self.head.add_module("dropout", nn.Dropout(dropout))
        self.head.add_module("fc", nn.Linear(channels, num_classes))
        _init_weights(self)
        if weights is not None:
            load_pretrained(self, weights)

    def torchvision_modules(self) -> dict[str, str]:
        """torchvision's ``conv1``, ``inception3a.branch2.0``, ... -> ours (``layer2.inception3a.branch2.reduce``)."""
        convs = {"conv1": "stem.conv1", "conv2": "layer1.conv2", "conv3": "layer1.conv3"}
        for stage, inceptions in INCEPTIONS.items():
            for name in inceptions:
                for theirs, ours in BRANCH_NAMES.items():
                    convs[f"inception{name}.{theirs}"] = f"{stage}.inception{name}.{ours}"
        names = {f"{theirs}.{part}": f"{ours}.{part}" for theirs, ours in convs.items() for part in ("conv", "bn")}
        return names | {"fc": "head.fc"}


def _pool(kernel_size: int) -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size, 2, ceil_mode=True)


def _init_weights(model: nn.Module) -> None:
    """torchvision's GoogLeNet initialisation: truncated N(0, 0.01) for convolutions and the classifier."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
