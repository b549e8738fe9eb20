"""VGG-11/13/16/19 with batch norm (Simonyan & Zisserman 2015), layer shapes as torchvision's
``vggN_bn``, every layer a named module."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from convlens.models.staged import NAMED_STAGES, Staged, check_width, scaled
from convlens.models.weights import load_pretrained

#: Convolutions per block (five blocks, widths ``VGG_WIDTHS``), configurations A, B, D, E of Table 1.
VGG_SPECS: dict[int, tuple[int, int, int, int, int]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
VGG_WIDTHS = (64, 128, 256, 512, 512)


def vgg_stage(in_channels: int, out_channels: int, convs: int, bias: bool = True) -> nn.Sequential:
    """``convs`` x (3x3 conv, BN, ReLU) named ``conv<k>, bn<k>, relu<k>``, then a 2x2 max-pool ``pool``."""
    stage = nn.Sequential()
    for index in range(1, convs + 1):
        stage.add_module(f"conv{index}", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias))
        stage.add_module(f"bn{index}", nn.BatchNorm2d(out_channels))
        stage.add_module(f"relu{index}", nn.ReLU())
        in_channels = out_channels
    stage.add_module("pool", nn.MaxPool2d(2))
    return stage


def mlp_head(
    pool: int, channels: int, hidden: int, num_classes: int, dropout: float, dropout_first: bool
) -> nn.Sequential:
    """Adaptive average pool to ``pool`` x ``pool``, flatten, two hidden layers ``fc<i>, relu<i>,
    dropout<i>`` (dropout leading each layer when ``dropout_first``, as AlexNet's), and ``fc3``."""
    head = nn.Sequential()
    head.add_module("pool", nn.AdaptiveAvgPool2d(pool))
    head.add_module("flatten", nn.Flatten())
    width = channels * pool * pool
    for index in (1, 2):
        layers = [(f"fc{index}", nn.Linear(width, hidden)), (f"relu{index}", nn.ReLU())]
        layers.insert(0 if dropout_first else 2, (f"dropout{index}", nn.Dropout(dropout)))
        for name, layer in layers:
            head.add_module(name, layer)
        width = hidden
    head.add_module("fc3", nn.Linear(hidden, num_classes))
    return head


class VGG(Staged):
    """VGG-``depth`` with batch norm for ``in_channels``-channel images and ``num_classes`` classes.

    The five conv blocks are ``stem, layer1..layer4``, each ending in its 2x2 max-pool (so at 224 px
    ``layer4`` outputs 7x7, as ResNet's), and ``head`` is torchvision's classifier behind its
    adaptive 7x7 average pool. Five halvings need ``min_input_size`` = 32 px: from 32 to 63 px
    ``layer4`` is 1x1 and the pool repeats it 7x7, exactly what torchvision's model does. Parameter
    counts equal torchvision's ``vggN_bn`` at any input size (at ``width_factor`` 1.0; other values
    scale every layer's channels and the classifier's hidden width), and ``weights`` (a torchvision
    ``vggN_bn`` file or weights name, see :mod:`convlens.models.weights`) loads into it.
    """

    min_input_size = 32

    def __init__(
        self,
        depth: int = 16,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        weights: str | Path | None = None,
        width_factor: float = 1.0,
    ) -> None:
        super().__init__()
        check_width(width_factor, weights)
        if depth not in VGG_SPECS:
            raise ValueError(f"model.depth={depth} is not a VGG of Table 1; choose one of {sorted(VGG_SPECS)}")
        self.depth = depth
        self.num_classes = num_classes
        self.in_channels = in_channels
        channels = in_channels
        for stage, width, convs in zip(NAMED_STAGES, VGG_WIDTHS, VGG_SPECS[depth], strict=False):
            self.add_module(stage, vgg_stage(channels, scaled(width, width_factor), convs))
            channels = scaled(width, width_factor)
        self.head = mlp_head(7, channels, scaled(4096, width_factor), num_classes, dropout, dropout_first=False)
        _init_weights(self)
        if weights is not None:
            load_pretrained(self, weights)

    @property
    def torchvision_arch(self) -> str:
        return f"vgg{self.depth}_bn"

    def torchvision_modules(self) -> dict[str, str]:
        """torchvision's ``features.<i>`` (conv, BN, ReLU per conv and a pool per block) and
        ``classifier.<i>`` -> ours (``features.4`` -> ``layer1.conv1`` in VGG-11)."""
        names = {"classifier.0": "head.fc1", "classifier.3": "head.fc2", "classifier.6": "head.fc3"}
        index = 0
        for stage, convs in zip(NAMED_STAGES, VGG_SPECS[self.depth], strict=False):
            for conv in range(1, convs + 1):
                names[f"features.{index}"] = f"{stage}.conv{conv}"
                names[f"features.{index + 1}"] = f"{stage}.bn{conv}"
                index += 3
            index += 1
        return names


def _init_weights(model: nn.Module) -> None:
    """torchvision's VGG initialisation: He for convolutions, N(0, 0.01) for the classifier."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
