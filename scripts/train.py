"""`make train`: train one experiment (Hydra entry point; the logic is in convlens.training.run)."""

import sys

import hydra
from omegaconf import DictConfig

from convlens.config import ConfigError, register_configs
from convlens.rundir import RunDirError
from convlens.training.run import train
from convlens.untrusted import UntrustedInputError

register_configs()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Returns the best checkpoint's validation accuracy: what a Hydra sweeper optimizes (hparams_search=optuna)."""
    try:
        metrics = train(cfg)
    except (ConfigError, RunDirError, UntrustedInputError) as error:
        sys.exit(f"make train: {error}")
    return None if metrics is None else metrics["val"]["acc"]


if __name__ == "__main__":
    main()
