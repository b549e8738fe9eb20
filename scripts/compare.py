"""`make compare`: train, visualize and evaluate each model on one experiment, then one comparison report
(logic in convlens.compare)."""

import sys

import hydra
from omegaconf import DictConfig

from convlens.compare import CompareError, compare
from convlens.compare.schema import register_schema
from convlens.pipeline import preload
from convlens.rundir import RunDirError
from convlens.untrusted import UntrustedInputError

register_schema()


@hydra.main(config_path="../conf/compare", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    preload()  # the stages are forked from here, after the imports they share
    try:
        compare(cfg)
    except (CompareError, RunDirError, UntrustedInputError, ValueError) as error:
        sys.exit(f"make compare: {error}")


if __name__ == "__main__":
    main()
