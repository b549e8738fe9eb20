"""The fixed encoder of the generator prior: which layer of the classifier is the code, how images
in [0, 1] become the classifier's input, and codes of whole image sets in batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convlens.data.transforms import resize
from convlens.models.layers import capture_activations, eval_mode, layer_output, model_device, resolve_layer

#: Images per forward pass when encoding a whole split.
ENCODE_BATCH = 250


def penultimate_layer(model: nn.Module) -> str:
    """The module defined just before the model's last ``nn.Linear``: its output is the classifier's
    input, the penultimate features (``head.flatten`` of a ResNet, ``head.dropout`` of the FER CNN)."""
    names = [name for name, _ in model.named_modules() if name]
    linear = [name for name in names if isinstance(model.get_submodule(name), nn.Linear)]
    before = names[: names.index(linear[-1])] if linear else []
    before = [name for name in before if not linear[-1].startswith(f"{name}.")]  # not its own containers
    if not before:
        raise ValueError(f"{type(model).__name__} has no nn.Linear after another layer; set code_layer")
    return before[-1]


@dataclass(frozen=True)
class ImageSpace:
    """How the run's data module turns images into model input: per-channel ``mean``/``std``, then a
    bilinear resize to ``image_size``, done here on float images in [0, 1], differentiably."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int

    def to_input(self, images: Tensor) -> Tensor:
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return resize((images - mean) / std, self.image_size)

    def to_pixels(self, inputs: Tensor) -> Tensor:
        """Model ``inputs`` back to images in [0, 1], at the model's input size."""
        return self.unclamped_pixels(inputs).clamp(0, 1)

    def unclamped_pixels(self, inputs: Tensor) -> Tensor:
        """Model ``inputs`` back to pixels, outside [0, 1] where the input leaves the data's range."""
        mean = torch.tensor(self.mean, device=inputs.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=inputs.device).view(1, -1, 1, 1)
        return inputs * std + mean


@torch.no_grad()
def code_shape(model: nn.Module, layer: str, image: Tensor, space: ImageSpace) -> tuple[int, ...]:
    """The shape (C, h, w) of one image's output of ``layer`` when it is a feature map, else () (a vector
    code): what the generator's first layer is built for. ``image``: one uint8 image (C, H, W)."""
    with eval_mode(model):
        inputs = space.to_input(image[None].to(model_device(model)).float() / 255)
        shape = tuple(layer_output(model, inputs, layer).shape[1:])
    return shape if len(shape) == 3 else ()


def encode(model: nn.Module, layer: str, inputs: Tensor) -> Tensor:
    """The flattened output (B, D) of ``layer`` for model ``inputs``, with gradients."""
    return layer_output(model, inputs, layer).flatten(1)


@torch.no_grad()
def encode_images(
    model: nn.Module,
    layers: list[str],
    images: Tensor,
    space: ImageSpace,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """Outputs of ``layers`` for uint8 ``images`` (N, C, H, W), in eval mode, on the CPU: flattened, or
    each (B, ...) output mapped to (B, D) by ``reduce``."""
    for layer in layers:
        resolve_layer(model, layer)
    device = model_device(model)
    outputs: dict[str, list[Tensor]] = {layer: [] for layer in layers}
    with eval_mode(model):
        for start in range(0, len(images), ENCODE_BATCH):
            batch = space.to_input(images[start : start + ENCODE_BATCH].to(device).float() / 255)
            found = _outputs(model, layers, batch, reduce or (lambda output: output.flatten(1)))
            for layer in layers:
                outputs[layer].append(found[layer].cpu())
    return {layer: torch.cat(parts) for layer, parts in outputs.items()}


def _outputs(
    model: nn.Module, layers: list[str], inputs: Tensor, reduce: Callable[[Tensor], Tensor]
) -> dict[str, Tensor]:
    with capture_activations(model, layers) as captured:
        model(inputs)
    return {layer: reduce(captured[layer]) for layer in layers}


@dataclass(frozen=True)
class CodeStatistics:
    """Per-dimension ``mean``, ``std`` and range [``low``, ``high``] of the training codes (D,).

    The generator has only seen codes inside that range, so DGN-AM and PPGN keep their codes in it (the
    DGN paper clips its code the same way), and they step in standardized units ``z = (h - mean) / std``
    so that one step size fits every layer.
    """

    mean: Tensor
    std: Tensor
    low: Tensor
    high: Tensor

    @classmethod
    def of(cls, codes: Tensor) -> CodeStatistics:
        std = codes.std(0)
        floor = 0.1 * float(std.mean()) + 1e-8  # near-dead dimensions (always 0 after a ReLU) count less
        return cls(codes.mean(0), std.clamp_min(floor), codes.amin(0), codes.amax(0))

    def to(self, device: torch.device) -> CodeStatistics:
        return CodeStatistics(*(tensor.to(device) for tensor in self.as_dict().values()))

    def as_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean, "std": self.std, "low": self.low, "high": self.high}

    def standardize(self, codes: Tensor) -> Tensor:
        return (codes - self.mean) / self.std

    def code(self, z: Tensor) -> Tensor:
        """The code of standardized ``z``, inside the training range."""
        return torch.minimum(torch.maximum(self.mean + self.std * z, self.low), self.high)

    def clip_(self, z: Tensor) -> Tensor:
        """Project standardized ``z`` into the training range, in place."""
        with torch.no_grad():
            return z.copy_(self.standardize(self.code(z)))
