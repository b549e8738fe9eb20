"""ResNet of He et al. 2015 (Table 1), written out so every layer is a named, hookable module.

Conventions shared by all convlens models (the explain stage relies on them):
named stages ``stem, layer1..layer4, head``; one ``nn.ReLU`` module per use, never inplace,
so hooks, deconvnet, guided backprop and Grad-CAM can act on each activation separately.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from convlens.models.staged import Staged, check_width, scaled
from convlens.models.weights import load_pretrained

#: Table 1: block type and number of blocks per stage for each depth.
RESNET_SPECS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; the residual path is ``residual`` and the shortcut ``shortcut``."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.residual = nn.Sequential()
        self.residual.add_module("conv1", _conv_bn(in_channels, width, 3, stride))
        self.residual.add_module("relu1", nn.ReLU())
        self.residual.add_module("conv2", _conv_bn(width, out_channels, 3))
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (stride on the 3x3, as torchvision's v1.5)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.residual = nn.Sequential()
        self.residual.add_module("conv1", _conv_bn(in_channels, width, 1))
        self.residual.add_module("relu1", nn.ReLU())
        self.residual.add_module("conv2", _conv_bn(width, width, 3, stride))
        self.residual.add_module("relu2", nn.ReLU())
        self.residual.add_module("conv3", _conv_bn(width, out_channels, 1))
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or a 1x1 projection (option B of the paper) when the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return _conv_bn(in_channels, out_channels, 1, stride)


#: The stem's 3x3/2 pool: the paper's max-pool, or an average pool for the ablation (padding counted, so
#: every input value gets the same weight in each window it lies in).
STEM_POOLS: dict[str, Callable[[], nn.Module]] = {
    "max": lambda: nn.MaxPool2d(3, 2, 1),
    "avg": lambda: nn.AvgPool2d(3, 2, 1),
}


class ResNet(Staged):
    """ResNet-18/34/50/101/152 for ``in_channels``-channel images and ``num_classes`` classes.

    The stem is the paper's 7x7/2 convolution and 3x3/2 max-pool, so inputs must be at least
    ``min_input_size`` pixels (the network downsamples by 32). ``width_factor`` scales every layer's
    channels (1.0: the paper's, 64 in the stem and ``layer1``, doubled by each later stage; less keeps
    the depth and makes CPU demos cheap). At 1.0 parameter counts equal
    torchvision's ``resnetN`` for the same number of classes, and ``weights`` (a torchvision
    ``resnetN`` file or weights name, see :mod:`convlens.models.weights`) loads into it. ``stem_pool``
    ``avg`` puts a 3x3/2 average pool where the paper has its max-pool: not the paper's network, only the
    ablation that tests whether the max-pool's routing of the gradient draws the bright corners of the
    shapes demo's gradient maps (docs/spatial_bias.md).
    """

    min_input_size = 32

    def __init__(
        self,
        depth: int = 18,
        num_classes: int = 1000,
        in_channels: int = 3,
        weights: str | Path | None = None,
        width_factor: float = 1.0,
        stem_pool: str = "max",
    ) -> None:
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"model.depth={depth} is not a ResNet of Table 1; choose one of {sorted(RESNET_SPECS)}")
        if stem_pool not in STEM_POOLS:
            raise ValueError(f"model.stem_pool={stem_pool!r}; choose one of {', '.join(STEM_POOLS)} (max: the paper's)")
        check_width(width_factor, weights)
        block_kind, blocks = RESNET_SPECS[depth]
        block = BasicBlock if block_kind == "basic" else Bottleneck
        self.depth = depth
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem = nn.Sequential()
        width = scaled(64, width_factor)
        self.stem.add_module("conv", nn.Conv2d(in_channels, width, 7, 2, 3, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(width))
        self.stem.add_module("relu", nn.ReLU())
        self.stem.add_module("pool", STEM_POOLS[stem_pool]())
        channels = width
        for index, count in enumerate(blocks, start=1):
            stride = 1 if index == 1 else 2
            stage_width = width * 2 ** (index - 1)
            stage = nn.Sequential()
            for block_index in range(count):
                stage.add_module(str(block_index), block(channels, stage_width, stride if block_index == 0 else 1))
                channels = stage_width * block.expansion
            self.add_module(f"layer{index}", stage)
        self.head = nn.Sequential()
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1))
        self.head.add_module("flatten", nn.Flatten())
        self.head.add_module("fc", nn.Linear(channels, num_classes))
        _init_weights(self)
        if weights is not None:
            load_pretrained(self, weights)

    @property
    def torchvision_arch(self) -> str:
        return f"resnet{self.depth}"

    def torchvision_modules(self) -> dict[str, str]:
        """torchvision's ``resnetN`` module names -> ours (``layer1.0.bn2`` -> ``layer1.0.residual.conv2.1``)."""
        names = {"conv1": "stem.conv", "bn1": "stem.bn", "fc": "head.fc"}
        for name, block in self.named_modules():
            if isinstance(block, BasicBlock | Bottleneck):
                for conv in (child for child, _ in block.residual.named_children() if child.startswith("conv")):
                    names[f"{name}.{conv}"] = f"{name}.residual.{conv}.0"
                    names[f"{name}.bn{conv[-1]}"] = f"{name}.residual.{conv}.1"
                if not isinstance(block.shortcut, nn.Identity):
                    names |= {f"{name}.downsample.{i}": f"{name}.shortcut.{i}" for i in ("0", "1")}
        return names


def _init_weights(model: nn.Module) -> None:
    """He init for convolutions; the last BN of each residual path starts at zero (Goyal et al. 2017),
    so every block begins as the identity, which trains faster and more stably."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    for module in model.modules():
        if isinstance(module, BasicBlock | Bottleneck):
            nn.init.zeros_(module.residual[-1][1].weight)
