"""Shared fixtures: composing the real Hydra configs, and tiny-but-real training overrides."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from convlens.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

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


@pytest.fixture
def compose_train() -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with overrides, as scripts/train.py would (minus Hydra's run dir)."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="train", overrides=list(overrides))

    return _compose


@pytest.fixture
def tiny_run_cfg(compose_train: Callable[..., DictConfig], tmp_path: Path) -> Callable[..., DictConfig]:
    """A tiny demo config writing its run directory into tmp_path/<name>."""

    def _cfg(experiment: str = "demo_shapes", *overrides: str, name: str = "run") -> DictConfig:
        return compose_train(f"experiment={experiment}", *TINY, f"paths.output_dir={tmp_path / name}", *overrides)

    return _cfg


def requires_shared_data(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (SHARED_DATA / name).exists(), reason=f"../shared/data/{name} not present")
