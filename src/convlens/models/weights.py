"""ImageNet weights from torchvision, mapped into convlens models; never downloaded.

``weights`` is a path to a torchvision ``.pth`` file, or the bare name of a torchvision weights
entry (``IMAGENET1K_V1``), looked up in torch hub's cache (``torch.hub.get_dir()/checkpoints``)
under the file name torchvision itself would download to. Each model states how torchvision's
modules are called in it (:meth:`torchvision_modules`, written out per architecture); every key
of the file must map to one of ours with the same shape, except two planned differences:

* ``in_channels`` other than 3: the first convolution's RGB filters are summed for 1 channel (the
  response to a gray image fed as R = G = B) or tiled and scaled by 3 / ``in_channels`` otherwise,
  as timm's ``adapt_input_conv`` does;
* ``num_classes`` other than the file's: the last ``nn.Linear`` keeps its fresh initialisation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from convlens.untrusted import UntrustedInputError, load_torchvision_weights

log = logging.getLogger(__name__)


def load_pretrained(model: nn.Module, weights: str | Path) -> None:
    """Load torchvision weights (a path, or a weights name found in the hub cache) into ``model``.

    ``model`` names torchvision's builder of its architecture in ``torchvision_arch`` (``resnet18``,
    ``vgg16_bn``, ...) and returns torchvision's name of each module with weights -> its own name
    from ``torchvision_modules()``.
    """
    path = weights_path(weights, model.torchvision_arch)
    ours = model.state_dict()
    mapped = map_keys(load_torchvision_weights(path), model.torchvision_modules(), ours, path)
    _fit_first_conv(mapped, ours, _first(model, nn.Conv2d), path)
    _fit_classifier(mapped, ours, _first(model, nn.Linear, last=True), path)
    check_shapes(mapped, ours, path)
    model.load_state_dict(mapped)
    log.info("loaded torchvision %s weights from %s", model.torchvision_arch, path)


def weights_path(weights: str | Path, arch: str) -> Path:
    """``weights`` itself when it names a file; a torchvision weights name's file in the hub cache."""
    path = Path(weights)
    if path.is_file() or path.suffix or len(path.parts) > 1:
        return path
    import torchvision

    entries = torchvision.models.get_model_weights(arch)
    if str(weights) not in entries.__members__:
        raise UntrustedInputError(
            f"model.weights={weights} is neither a file nor a torchvision weights name for {arch}; "
            f"names: {', '.join(entries.__members__)}, or pass the path of a .pth file"
        )
    cached = Path(torch.hub.get_dir()) / "checkpoints" / entries[str(weights)].url.rsplit("/", 1)[-1]
    if not cached.is_file():
        raise UntrustedInputError(
            f"model.weights={weights}: {cached} is not in torch hub's cache, and convlens never downloads. "
            f"Fetch it where the internet is reachable (torchvision.models.{arch}(weights='{weights}')), "
            "copy the file there, or pass model.weights=<path to the .pth file>"
        )
    return cached


def map_keys(
    state: dict[str, Tensor], modules: dict[str, str], ours: dict[str, Tensor], path: Path
) -> dict[str, Tensor]:
    """Rename torchvision's keys to ours through the module table; a key that maps nowhere, or one
    of ours that nothing maps to, is an error naming the file and the key. torchvision's GoogLeNet
    auxiliary heads (``aux1``, ``aux2``) have no counterpart and are dropped."""
    mapped: dict[str, Tensor] = {}
    dropped = []
    for key, tensor in state.items():
        module, _, parameter = key.rpartition(".")
        if module in modules:
            mapped[f"{modules[module]}.{parameter}"] = tensor
        elif key.startswith(("aux1.", "aux2.")):
            dropped.append(key)
        else:
            raise UntrustedInputError(f"weights file {path}: key '{key}' belongs to no layer of this model; {_hint()}")
    missing = [key for key in ours if key not in mapped]
    if missing:
        raise UntrustedInputError(f"weights file {path} lacks the weights of '{missing[0]}'; {_hint()}")
    if dropped:
        log.info("weights file %s: dropped %d weights of the auxiliary heads (not built here)", path, len(dropped))
    return mapped


def check_shapes(mapped: dict[str, Tensor], ours: dict[str, Tensor], path: Path) -> None:
    for key, tensor in ours.items():
        if mapped[key].shape != tensor.shape:
            raise UntrustedInputError(
                f"weights file {path}: '{key}' has shape {tuple(mapped[key].shape)} there but "
                f"{tuple(tensor.shape)} here; {_hint()}"
            )


def _hint() -> str:
    return "is it torchvision's file for this architecture and depth (model=..., model.depth=...)?"


def _fit_first_conv(mapped: dict[str, Tensor], ours: dict[str, Tensor], conv: str, path: Path) -> None:
    """Adapt the first convolution's RGB filters to ``in_channels`` (see the module docstring)."""
    key = f"{conv}.weight"
    have, want = mapped[key].shape[1], ours[key].shape[1]
    if have == want or have != 3:
        return
    weight = mapped[key].float()
    if want == 1:
        mapped[key] = weight.sum(dim=1, keepdim=True)
    else:
        mapped[key] = weight.repeat(1, -(-want // 3), 1, 1)[:, :want] * (3 / want)
    log.info("weights file %s: %s's 3 input channels adapted to %d", path, conv, want)


def _fit_classifier(mapped: dict[str, Tensor], ours: dict[str, Tensor], linear: str, path: Path) -> None:
    """Keep our freshly initialised classifier when the file has another number of classes."""
    key = f"{linear}.weight"
    classes = mapped[key].shape[0]
    if classes == ours[key].shape[0]:
        return
    for name in (key, f"{linear}.bias"):
        if name in ours:
            mapped[name] = ours[name]
    log.info(
        "weights file %s has %d classes, the model %d: %s keeps its fresh initialisation (train it)",
        path,
        classes,
        ours[key].shape[0],
        linear,
    )


def _first(model: nn.Module, kind: type[nn.Module], last: bool = False) -> str:
    names = [name for name, module in model.named_modules() if isinstance(module, kind)]
    return names[-1 if last else 0]
