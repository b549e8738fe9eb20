"""Layer helpers shared by the explain methods: name lookup, activation capture, first conv.

Layers are addressed by dotted module names (``stem.conv``, ``layer4.1``), as
``nn.Module.get_submodule`` takes them; the helpers add the error messages and hooks on top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def layer_names(model: nn.Module) -> list[str]:
    """Dotted names of every submodule of ``model`` (the root excluded), in definition order."""
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; a ``ValueError`` listing the valid names if there is none."""
    if name:
        try:
            return model.get_submodule(name)
        except AttributeError:
            pass
    raise ValueError(f"unknown layer {name!r}; valid layers: {', '.join(layer_names(model))}")


def first_conv_name(model: nn.Module) -> str:
    """Name of the first ``nn.Conv2d`` in definition order (``stem.conv`` for convlens models)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextmanager
def capture_activations(model: nn.Module, names: Sequence[str], inputs: bool = False) -> Iterator[dict[str, Tensor]]:
    """Forward hooks that store each named layer's output (``inputs``: its first input, a ReLU's
    pre-activation) in the yielded dict (keys: ``names``).

    Tensors are stored as produced (not detached), so callers may backpropagate through them.
    The hooks are removed on exit, even on error.
    """
    captured: dict[str, Tensor] = {}
    hooks = [resolve_layer(model, name).register_forward_hook(_store(captured, name, inputs)) for name in names]
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


def _store(
    captured: dict[str, Tensor], name: str, inputs: bool
) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
    def hook(_module: nn.Module, given: tuple[Tensor, ...], output: Tensor) -> None:
        captured[name] = given[0] if inputs else output

    return hook


def layer_output(model: nn.Module, images: Tensor, name: str) -> Tensor:
    """The output of layer ``name`` for ``images`` (the whole model runs; gradients are kept)."""
    with capture_activations(model, [name]) as captured:
        model(images.to(model_device(model)))
    return captured[name]


def layer_input(model: nn.Module, images: Tensor, name: str) -> Tensor:
    """The input of layer ``name`` for ``images`` (a ReLU's: the pre-activation; gradients are kept)."""
    with capture_activations(model, [name], inputs=True) as captured:
        model(images.to(model_device(model)))
    return captured[name]


def check_channels(output: Tensor, channels: Iterable[int], name: str) -> None:
    """A ``ValueError`` when a channel index is not valid for ``output`` (B, C, ...) of layer ``name``."""
    count = output.shape[1]
    bad = [channel for channel in channels if not 0 <= channel < count]
    if bad:
        raise ValueError(f"channel {bad[0]} out of range for layer {name!r} with {count} channels (0..{count - 1})")


def last_relu(model: nn.Module, stage: str) -> str:
    """Name of the last ``nn.ReLU`` inside ``stage``: that stage's output activation.

    For a ResNet stage this is the last block's output ReLU (``layer4.1.relu`` = conv5_x output);
    for FerCNN the last conv activation before pooling (``layer4.relu2``).
    """
    prefix = f"{stage}."
    resolve_layer(model, stage)
    names = [name for name, module in model.named_modules() if name.startswith(prefix) and isinstance(module, nn.ReLU)]
    if not names:
        raise ValueError(f"layer {stage!r} contains no nn.ReLU module")
    return names[-1]


#: What a stage may end with after its last feature map: pooling, and the dropout that follows it.
_AFTER_FEATURES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.Dropout)
#: The stages a class activation map is drawn at by default.
CAM_STAGES = ("layer2", "layer3", "layer4")


def before_pooling(model: nn.Module, stage: str) -> str:
    """``stage``, or where it ends by pooling (a VGG-style stage: convolutions, ReLU, max-pool, dropout)
    the last module before that pooling: Grad-CAM's "last convolutional layer" (Selvaraju et al. take
    VGG-16's ``relu5_3`` at 14x14, not ``pool5`` at 7x7), whose map is finer than the pooled output's.
    A ResNet stage ends with its last block and is returned as it is."""
    children = list(resolve_layer(model, stage).named_children())
    kept = len(children)
    while kept and isinstance(children[kept - 1][1], _AFTER_FEATURES):
        kept -= 1
    return f"{stage}.{children[kept - 1][0]}" if 0 < kept < len(children) else stage


def pooled_stages(model: nn.Module, layers: Sequence[str]) -> dict[str, str]:
    """Those of ``layers`` that stand for a stage ending in pooling (:func:`before_pooling`), each with its
    stage: what a reader must be told, since the map is not of the stage's own (pooled) output."""
    stages = {layer: layer.split(".", 1)[0] for layer in layers if "." in layer}
    return {layer: stage for layer, stage in stages.items() if stage != layer and before_pooling(model, stage) == layer}


def default_cam_layers(model: nn.Module) -> list[str]:
    """The feature maps class activation maps are drawn at by default: :data:`CAM_STAGES`, each
    before its pooling (:func:`before_pooling`)."""
    return [before_pooling(model, stage) for stage in CAM_STAGES]


def default_feature_layers(model: nn.Module) -> list[str]:
    """An early and a deep activation: the stem ReLU and the output of ``layer4`` (conv5_x): its last
    ReLU, or the layer a model names as ``deep_feature_layer`` (where branches are concatenated)."""
    return [last_relu(model, "stem"), getattr(model, "deep_feature_layer", None) or last_relu(model, "layer4")]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (BN statistics fixed, dropout off), restoring each module's flag on exit.

    Visualizations must not depend on the batch or update BN running statistics.
    """
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags.items():
            module.training = training


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """The parameters of ``model`` stop requiring gradients for the block, each flag restored on exit:
    a backward pass then computes only the gradients asked for (of the input, of an activation, of
    another module's weights) instead of also filling every frozen weight's ``.grad``."""
    flags = {parameter: parameter.requires_grad for parameter in model.parameters()}
    try:
        for parameter in flags:
            parameter.requires_grad_(False)
        yield
    finally:
        for parameter, flag in flags.items():
            parameter.requires_grad_(flag)
