"""Shared fixtures: composing the real Hydra configs, and tiny-but-real training overrides."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn

from convlens.config import register_configs
from convlens.models import FerCNN, ResNet
from convlens.training.run import train

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"
#: Every learning-rate schedule a run can name (scheduler=<name>), one per conf/scheduler/*.yaml.
SCHEDULERS = sorted(p.stem for p in (CONF / "scheduler").glob("*.yaml"))

torch.set_num_threads(min(2, os.cpu_count() or 1))
register_configs()

#: A few hundred synthetic images, one epoch: trains in seconds yet goes through every code path.
TINY = [
    "data.source.train_size=256",
    "data.source.val_size=96",
    "data.source.test_size=96",
    "data.batch_size=64",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_config(folder: str, name: str, *overrides: str) -> DictConfig:
    """``conf/<folder>/<name>.yaml`` with overrides, as that stage's entry point composes it."""
    with initialize_config_dir(config_dir=str(CONF / folder), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def train_tiny(run_dir: Path, experiment: str, *overrides: str) -> Path:
    """A real 1-epoch run of ``experiment`` on a few hundred images, written into ``run_dir``."""
    train(compose_config(".", "train", f"experiment={experiment}", *TINY, f"paths.output_dir={run_dir}", *overrides))
    return run_dir


@pytest.fixture
def compose_train() -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with overrides, as scripts/train.py would (minus Hydra's run dir)."""

    def _compose(*overrides: str) -> DictConfig:
        return compose_config(".", "train", *overrides)

    return _compose


@pytest.fixture
def tiny_run_cfg(compose_train: Callable[..., DictConfig], tmp_path: Path) -> Callable[..., DictConfig]:
    """A tiny demo config writing its run directory into tmp_path/<name>."""

    def _cfg(experiment: str = "demo_shapes", *overrides: str, name: str = "run") -> DictConfig:
        return compose_train(f"experiment={experiment}", *TINY, f"paths.output_dir={tmp_path / name}", *overrides)

    return _cfg


def requires_shared_data(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (SHARED_DATA / name).exists(), reason=f"../shared/data/{name} not present")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """For modules of many tiny batches: one thread is faster than two, and does not stall when
    another process holds the second core (two threads then made the explain tests 3x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine weights (fresh ResNets zero the last BN of each block),
    so that explanation tests do not pass by accident on an identity-like network; returns eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            count = module.num_features
            module.weight.data = torch.rand(count, generator=generator) + 0.5
            module.bias.data = torch.randn(count, generator=generator) * 0.1
            module.running_mean = torch.randn(count, generator=generator) * 0.1
            module.running_var = torch.rand(count, generator=generator) + 0.5
    return model.eval()


def small_resnet() -> nn.Module:
    """A seeded ResNet-18 (10 classes, RGB) with randomized batch norm, in eval mode."""
    torch.manual_seed(0)
    return randomize_batchnorm(ResNet(18, 10, 3))


def small_fer_cnn() -> nn.Module:
    """A seeded narrow FerCNN (7 classes, gray) with randomized batch norm, in eval mode."""
    torch.manual_seed(0)
    return randomize_batchnorm(FerCNN(7, 1, widths=(8, 16, 32, 64)))
