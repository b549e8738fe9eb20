"""The cluster configs compose with their Hydra plugins (the `cluster` extra): the SLURM launcher and the
Optuna search, whose searched keys must be real config keys in valid override syntax."""

from __future__ import annotations

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class
from omegaconf import OmegaConf

NOT_INSTALLED = "not installed; pip install -e '.[cluster]'"


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason=f"hydra-submitit-launcher {NOT_INSTALLED}")
    cfg = _compose("hydra/launcher=slurm", "experiment=demo_faces", "trainer=ddp")
    launcher = cfg.hydra.launcher
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1 and launcher.timeout_min == 720
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 1


def test_optuna_search_composes_over_real_keys() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason=f"hydra-optuna-sweeper {NOT_INSTALLED}")
    cfg = _compose("hparams_search=optuna", "experiment=demo_faces")
    sweeper = cfg.hydra.sweeper
    assert get_class(sweeper._target_).__name__ == "OptunaSweeper" and sweeper.direction == "maximize"
    assert OmegaConf.to_container(cfg.hydra.sweeper, resolve=False)["study_name"] == "${experiment_name}"
    params = OmegaConf.to_container(sweeper.params)
    for key in params:
        assert OmegaConf.select(cfg, key) is not None, f"{key} is not a config key"
    parsed = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    assert all(override.is_sweep_override() for override in parsed)
