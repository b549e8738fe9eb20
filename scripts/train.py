"""`make train`: train one experiment (Hydra entry point; the logic is in convlens.training.run)."""

import hydra
from omegaconf import DictConfig

from convlens.config import register_configs
from convlens.training.run import train

register_configs()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
