"""``<run>/generator/``: what the generate stage leaves for the visualize stage, and loading it back.

| file | content |
| --- | --- |
| ``config.json`` | architecture, code and feature layers, the data's normalization, the training settings |
| ``generator.pt``, ``denoiser.pt`` | ``state_dict``s of the generator and of the PPGN-h code prior |
| ``statistics.pt`` | code mean/std/range; penultimate features (``heldout``) and labels (``heldout_labels``) |
| | of test images, the real images the realism measure compares with |
| ``losses.json``, ``loss_curve.png`` | per-step training losses |
| ``metrics.json`` | held-out reconstruction error against the mean image's, the stage's seconds |

Everything is read as untrusted input: tensors with ``weights_only=True``, sizes and names checked
before any network is built, every refusal naming the file and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from convlens import untrusted
from convlens.generator.encoding import CodeStatistics, ImageSpace
from convlens.generator.networks import CodeDenoiser, UpConvGenerator
from convlens.provenance import portable_path
from convlens.rundir import GENERATOR as FOLDER
from convlens.rundir import RunDirError
from convlens.untrusted import UntrustedInputError, inside

CONFIG, GENERATOR, DENOISER, STATISTICS = "config.json", "generator.pt", "denoiser.pt", "statistics.pt"
LOSSES, LOSS_CURVE, METRICS = "losses.json", "loss_curve.png", "metrics.json"
#: Largest width or code size a config may ask for (guards memory against a tampered file).
MAX_WIDTH = 1 << 16


class MissingGenerator(RunDirError):
    """The run has no (complete) generator folder."""


@dataclass(frozen=True)
class GeneratorPrior:
    """A trained generator prior, ready for DGN-AM and PPGN (see :mod:`convlens.explain.generator`)."""

    generator: UpConvGenerator
    denoiser: CodeDenoiser
    statistics: CodeStatistics
    space: ImageSpace
    code_layer: str
    feature_layer: str
    heldout: Tensor
    heldout_labels: Tensor

    def to(self, device: torch.device) -> GeneratorPrior:
        networks = (self.generator.to(device), self.denoiser.to(device), self.statistics.to(device))
        return GeneratorPrior(*networks, self.space, self.code_layer, self.feature_layer, self.heldout,
                              self.heldout_labels)  # fmt: skip


def generator_folder(run_dir: str | Path) -> Path:
    return inside(run_dir, FOLDER)


def architecture(generator: UpConvGenerator, denoiser: CodeDenoiser) -> dict[str, Any]:
    """The constructor arguments of both networks, as ``config.json`` records them."""
    return {"code_dim": generator.code_dim, "channels": generator.channels, "size": generator.size,
            "widths": generator.widths, "code_shape": generator.code_shape, "hidden": denoiser.hidden}  # fmt: skip


def load_prior(run_dir: str | Path) -> GeneratorPrior:
    """The generator prior of a run; :class:`MissingGenerator` when it has none."""
    folder = generator_folder(run_dir)
    if not folder.is_dir():
        raise MissingGenerator(f"no generator in this run: run `make generate RUN={portable_path(run_dir)}` first")
    config = _read_config(folder / CONFIG)
    generator = UpConvGenerator(config["code_dim"], config["channels"], config["size"], config["widths"],
                                config["code_shape"])  # fmt: skip
    denoiser = CodeDenoiser(config["code_dim"], config["hidden"])
    _load_weights(generator, folder / GENERATOR)
    _load_weights(denoiser, folder / DENOISER)
    tensors = _read_statistics(folder / STATISTICS, config["code_dim"])
    statistics = CodeStatistics(tensors["mean"], tensors["std"], tensors["low"], tensors["high"])
    space = ImageSpace(tuple(config["mean"]), tuple(config["std"]), config["image_size"])
    return GeneratorPrior(generator.eval(), denoiser.eval(), statistics, space, config["code_layer"],
                          config["feature_layer"], tensors["heldout"], tensors["heldout_labels"])  # fmt: skip


def generate_command(path: Path) -> str:
    """The command that writes ``path``, a file of ``<run>/generator/``, again."""
    return f"`make generate RUN={portable_path(path.parent.parent)}`"


def again(path: Path) -> str:
    """The fix for a damaged file of ``<run>/generator/``: train the run's generator again."""
    return f"run {generate_command(path)} again"


def read_json(path: Path) -> Any:
    """A JSON file of the generator folder, read strictly (``NaN`` and ``Infinity`` refused), every refusal
    naming the file and the command that writes it again."""
    return untrusted.read_json(path, generate_command(path))


def _read_config(path: Path) -> dict[str, Any]:
    config = read_json(path)
    if not isinstance(config, dict):
        raise UntrustedInputError(f"{path} must hold a JSON object; {again(path)}")
    for key in ("code_dim", "channels", "size", "hidden", "image_size"):
        _check_int(config.get(key), path, key)
    widths = config.get("widths")
    if not isinstance(widths, list) or len(widths) < 2:
        raise UntrustedInputError(f"{path}: widths must list >= 2 widths; {again(path)}")
    for index, width in enumerate(widths):
        _check_int(width, path, f"widths[{index}]")
    _check_code_shape(config.get("code_shape"), config["code_dim"], path)
    for key in ("code_layer", "feature_layer"):
        if not isinstance(config.get(key), str):
            raise UntrustedInputError(f"{path}: {key} must be a layer name; {again(path)}")
    for key in ("mean", "std"):
        values = config.get(key)
        if (
            not isinstance(values, list)
            or len(values) != config["channels"]
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            raise UntrustedInputError(f"{path}: {key} must list one number per channel; {again(path)}")
    return config


def _check_code_shape(shape: Any, code_dim: int, path: Path) -> None:
    """``code_shape``: [] (a vector code) or [C, h, w] whose product is ``code_dim``."""
    if not isinstance(shape, list) or len(shape) not in (0, 3):
        raise UntrustedInputError(f"{path}: code_shape must be [] or [C, h, w]; {again(path)}")
    for index, size in enumerate(shape):
        _check_int(size, path, f"code_shape[{index}]")
    if shape and math.prod(shape) != code_dim:
        raise UntrustedInputError(f"{path}: code_shape {shape} does not hold code_dim={code_dim} values; {again(path)}")


def _check_int(value: Any, path: Path, key: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WIDTH:
        raise UntrustedInputError(f"{path}: {key}={value!r} must be an integer in 1..{MAX_WIDTH}; {again(path)}")


def _load_tensors(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise UntrustedInputError(f"{path} is missing; {again(path)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # weights_only refusals and damaged files alike: never loaded
        raise UntrustedInputError(
            f"{path} cannot be loaded as plain tensors ({str(error).splitlines()[0]}); {again(path)}"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UntrustedInputError(f"{path} must hold a dict of tensors; {again(path)}")
    return state


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    """Weights whose names and shapes are exactly what ``config.json`` describes, else a refusal."""
    state = _load_tensors(path)
    expected = module.state_dict()
    if set(state) != set(expected):
        odd = sorted(set(state) ^ set(expected))[0]
        raise UntrustedInputError(f"{path}: weight '{odd}' does not belong to the network config.json describes; "
                                  f"{again(path)}")  # fmt: skip
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise UntrustedInputError(f"{path}: '{key}' has shape {tuple(state[key].shape)}, config.json says "
                                      f"{tuple(tensor.shape)}; {again(path)}")  # fmt: skip
    module.load_state_dict(state)


def _read_statistics(path: Path, code_dim: int) -> dict[str, Tensor]:
    tensors = _load_tensors(path)
    for key in ("mean", "std", "low", "high"):
        if key not in tensors or tuple(tensors[key].shape) != (code_dim,):
            raise UntrustedInputError(f"{path}: '{key}' must have shape ({code_dim},); {again(path)}")
    heldout, labels = tensors.get("heldout"), tensors.get("heldout_labels")
    if heldout is None or heldout.ndim != 2 or len(heldout) == 0:
        raise UntrustedInputError(f"{path}: 'heldout' must be (N, D) features; {again(path)}")
    if labels is None or labels.dtype != torch.int64 or tuple(labels.shape) != (len(heldout),):
        raise UntrustedInputError(f"{path}: 'heldout_labels' must be one int64 label per held-out image; {again(path)}")
    return {key: value if key == "heldout_labels" else value.float() for key, value in tensors.items()}
