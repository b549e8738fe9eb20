"""The run directory, the only hand-off between stages: its files, `latest` pointers, and the
trained model loaded back from it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

if TYPE_CHECKING:  # importing the data module pulls in Lightning: 3 s that report/visualize rarely need
    from convlens.data import ImageDataModule

CONFIG = "config.yaml"
CLASS_NAMES = "class_names.json"
METRICS = "metrics.json"
BEST_CHECKPOINT = Path("checkpoints") / "best.ckpt"
LATEST = "latest"


class RunDirError(ValueError):
    """A path that is not (or not yet) what a stage needs; the message says how to get there."""


def check_run_dir(path: str | Path) -> Path:
    root = Path(path)
    if not (root / CONFIG).is_file():
        raise RunDirError(
            f"{root} is not a run directory (no {CONFIG}). Pass RUN=outputs/<experiment>/<time> "
            "of a run made by `make train` or `make demo`."
        )
    return root


def point_latest(run_dir: Path) -> None:
    """Make ``<experiment dir>/latest`` a relative symlink to ``run_dir`` (atomically)."""
    link = run_dir.parent / LATEST
    temporary = run_dir.parent / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_dir.name, target_is_directory=True)
    temporary.replace(link)


def resolve_runs(run: str | Path | None, experiment: str | None, outputs_dir: str | Path) -> list[Path]:
    """RUN given: that run. Otherwise the latest run of ``experiment``, or of every experiment."""
    if run:
        return [check_run_dir(run)]
    outputs = Path(outputs_dir)
    experiments = [outputs / experiment] if experiment else sorted(p for p in outputs.glob("*") if p.is_dir())
    runs = [path / LATEST for path in experiments if (path / LATEST).exists()]
    if not runs:
        scope = f"experiment '{experiment}'" if experiment else "any experiment"
        raise RunDirError(f"no trained run of {scope} under {outputs}/; run `make train` or `make demo` first")
    return [check_run_dir(path) for path in runs]


@dataclass
class TrainedRun:
    """A run directory with its model (best checkpoint, eval mode, CPU) and its data, ready to inspect."""

    root: Path
    config: DictConfig
    class_names: list[str]
    model: nn.Module
    datamodule: ImageDataModule


def best_checkpoint(root: Path) -> Path:
    metrics = root / METRICS
    relative = json.loads(metrics.read_text()).get("best_checkpoint") if metrics.exists() else None
    path = root / (relative or BEST_CHECKPOINT)
    if not path.is_file():
        raise RunDirError(f"{root} has no checkpoint at {path.relative_to(root)}; train it first (`make train`)")
    return path


def load_state(model: nn.Module, checkpoint: Path, prefix: str = "net.") -> None:
    """Load the ``net.`` weights of a Lightning checkpoint, with a clear error when shapes differ."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    weights = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    check_shapes(model.state_dict(), weights, checkpoint)
    model.load_state_dict(weights)


def check_shapes(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], checkpoint: Path) -> None:
    for key, tensor in expected.items():
        if key not in found:
            raise RunDirError(f"checkpoint {checkpoint} lacks weight '{key}': it was made for another model")
        if found[key].shape != tensor.shape:
            raise RunDirError(
                f"checkpoint {checkpoint} does not fit the model: '{key}' has shape {tuple(found[key].shape)} "
                f"there but {tuple(tensor.shape)} here (different number of classes or channels?). "
                "Use a checkpoint of the same experiment, or train from scratch (ckpt_path=null)."
            )


def load_run(path: str | Path) -> TrainedRun:
    root = check_run_dir(path)
    config = OmegaConf.load(root / CONFIG)
    checkpoint = best_checkpoint(root)
    model = instantiate(config.model)
    load_state(model, checkpoint)
    model.eval()
    datamodule = instantiate(config.data, on_device=False)
    datamodule.prepare()
    class_names = json.loads((root / CLASS_NAMES).read_text())
    return TrainedRun(root, config, class_names, model, datamodule)
