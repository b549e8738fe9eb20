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
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except (ConfigError, RunDirError, UntrustedInputError) as error:
        sys.exit(f"make train: {error}")


if __name__ == "__main__":
    main()
