"""`make generate`: train the generator prior of trained runs (Hydra entry point; logic in convlens.generate)."""

import sys

import hydra
from omegaconf import DictConfig

from convlens.generate.schema import register_schema
from convlens.generate.stage import generate
from convlens.rundir import RunDirError

register_schema()


@hydra.main(config_path="../conf/generate", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        generate(cfg)
    except (RunDirError, ValueError) as error:
        sys.exit(f"make generate: {error}")


if __name__ == "__main__":
    main()
