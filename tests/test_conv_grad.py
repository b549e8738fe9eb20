"""Batched weight gradients of tiny-map convolutions: same gradients as autograd's, used only there."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from convlens.models import FerCNN, ResNet
from convlens.training.conv_grad import MAX_POSITIONS, hook_batched_weight_grads
from convlens.training.run import build_module

CASES = {
    # 32 px: layer3 runs at 2x2 and layer4 at 1x1, so the stride-2 and projection convolutions are covered too.
    "resnet18-rgb": (lambda: ResNet(18, num_classes=10), (6, 3, 32, 32)),
    "resnet50-gray": (lambda: ResNet(50, num_classes=7, in_channels=1), (3, 1, 32, 32)),
    # 20 px: layer4 runs at 2x2; dropout is seeded per pass below.
    "fercnn-gray": (lambda: FerCNN(7, 1, widths=(8, 16, 16, 32)), (4, 1, 20, 20)),
}


def _gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    net.zero_grad(set_to_none=True)
    x.grad = None
    torch.manual_seed(1)
    F.cross_entropy(net(x), y).backward()
    return [p.grad.clone() for p in net.parameters()] + [x.grad.clone()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_equal_autograd(case: str) -> None:
    make, shape = CASES[case]
    torch.manual_seed(0)
    net = make().to(memory_format=torch.channels_last)
    for module in net.modules():  # non-trivial BN scales, so every residual path carries gradient
        if isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight)
    x = torch.randn(shape).requires_grad_(True)
    y = torch.randint(0, 7, (shape[0],))
    expected = _gradients(net, x, y)
    handles = hook_batched_weight_grads(net)
    found = _gradients(net, x, y)
    for handle in handles:
        handle.remove()
    assert handles
    for want, got in zip(expected, found, strict=True):  # float rounding, relative to each tensor's scale
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def _conv_outputs(net: nn.Module) -> dict[str, torch.Tensor]:
    """Every convolution's output of one forward pass, as the next layer receives it."""
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
        for name, module in net.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    net(torch.randn(2, 3, 32, 32))
    for handle in handles:
        handle.remove()
    return outputs


def _batched(outputs: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, out in outputs.items() if type(out.grad_fn).__name__ == "_BatchedWeightGradBackward"}


def test_only_tiny_maps_take_the_batched_path() -> None:
    net = ResNet(18, num_classes=10)
    handles = hook_batched_weight_grads(net)  # registered first, so the recording hooks see its output
    outputs = _conv_outputs(net)
    tiny = {name for name, out in outputs.items() if out.shape[-2] * out.shape[-1] <= MAX_POSITIONS}
    assert _batched(outputs) == tiny and "layer4.1.residual.conv2.0" in tiny and "stem.conv" not in tiny
    with torch.no_grad():
        assert not _batched(_conv_outputs(net)), "no gradient, no hooked graph"
    for handle in handles:
        handle.remove()
    assert not _batched(_conv_outputs(net)), "removing the handles restores the plain path"


def test_cpu_training_hooks_the_convolutions_and_removes_the_hooks_after_fit(tiny_run_cfg) -> None:
    cfg = tiny_run_cfg("demo_shapes")
    datamodule = instantiate(cfg.data)
    datamodule.prepare()
    module = build_module(cfg, datamodule.class_names)
    hooked_per_step: list[int] = []

    class Probe(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: object) -> None:
            hooked_per_step.append(sum(bool(m._forward_hooks) for m in pl_module.net.modules()))

    trainer = pl.Trainer(accelerator="cpu", precision="32-true", max_steps=2, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Probe()])  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    assert hooked_per_step and all(count == 20 for count in hooked_per_step), "every ResNet-18 convolution"
    assert not any(m._forward_hooks for m in module.net.modules())
