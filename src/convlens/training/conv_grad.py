"""Weight gradients of convolutions on tiny feature maps as one matrix product (CPU, fp32 training).

On CPUs without AVX-512, oneDNN computes a weight gradient with one small matrix product per image
(its ``gemm:jit`` backward-weights path). On a map of L positions that is a rank-L update of the whole
weight per image, bound by memory traffic: on the tiny maps of a ResNet's late stages at 32 px input it
takes several times as long as one product over the whole batch, enough to dominate a ``demo_shapes``
training step (``benchmarks/conv_weight_grad.py``; the numbers are in ``docs/benchmarks.md``). No
library or torch switch changes that path, so it is written here: :func:`hook_batched_weight_grads`
hooks every plain ``nn.Conv2d`` of a model, and on maps of at most ``MAX_POSITIONS`` output positions
the hook routes the gradient through :class:`_BatchedWeightGrad`.
The forward output stays oneDNN's, the input gradient comes from oneDNN's (fast) backward-data
path, and the weight gradient is ``unfold`` followed by a single ``matmul``. On larger maps
oneDNN's own path is faster and is left alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

#: Output positions (H x W) up to which the batched product wins: at 1x1 and 2x2 it was 7.9x and
#: 1.5x as fast as oneDNN's per-image products, at 4x4 (128 channels) 0.7x, at 8x8 0.2x.
MAX_POSITIONS = 4


class _BatchedWeightGrad(torch.autograd.Function):
    """Identity on the convolution's ``output`` in the forward pass; in the backward pass, the
    gradients of the convolution's input and weight."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, output: Tensor, conv: nn.Conv2d) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.conv = conv
        return output.view_as(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        conv: nn.Conv2d = ctx.conv
        grad_input = None
        if ctx.needs_input_grad[0]:
            grad_input = torch.nn.grad.conv2d_input(
                x.shape, weight, grad_output, conv.stride, conv.padding, conv.dilation, conv.groups
            )
        grad_weight = batched_weight_gradient(x, grad_output, conv) if ctx.needs_input_grad[1] else None
        return grad_input, grad_weight, None, None


def batched_weight_gradient(x: Tensor, grad_output: Tensor, conv: nn.Conv2d) -> Tensor:
    """The gradient of ``conv``'s weight (groups 1) for input ``x``: unfold + one matmul over the batch."""
    columns = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # (N, C*kh*kw, L)
    columns = columns.transpose(1, 2).reshape(-1, columns.shape[1])  # (N*L, C*kh*kw)
    grads = grad_output.transpose(0, 1).reshape(grad_output.shape[1], -1)  # (O, N*L)
    return (grads @ columns).view_as(conv.weight)


def _hook(conv: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
    """Replace ``output`` by the same values with the batched weight gradient, on tiny maps only."""
    if not torch.is_grad_enabled() or output.shape[-2] * output.shape[-1] > MAX_POSITIONS:
        return None
    return _BatchedWeightGrad.apply(inputs[0], conv.weight, output.detach(), conv)


def _eligible(module: nn.Module) -> bool:
    return type(module) is nn.Conv2d and module.groups == 1 and module.bias is None and module.padding_mode == "zeros"


def hook_batched_weight_grads(model: nn.Module) -> list[RemovableHandle]:
    """From now on, convolutions of ``model`` on maps of at most ``MAX_POSITIONS`` positions get their
    weight gradient from one matrix product; remove the returned handles to undo it. Meant for fp32
    training on the CPU (under autocast the output's dtype differs from the weight's). Values and
    gradients equal the plain ones up to float rounding."""
    return [module.register_forward_hook(_hook) for module in model.modules() if _eligible(module)]
