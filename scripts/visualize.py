"""`make visualize`: explain trained runs (Hydra entry point; the logic is in convlens.visualize)."""

import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # lime draws a progress bar per explanation; read at import

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from convlens.rundir import RunDirError  # noqa: E402
from convlens.visualize import visualize  # noqa: E402
from convlens.visualize.schema import register_schema  # noqa: E402

register_schema()


@hydra.main(config_path="../conf/visualize", config_name="visualize", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        visualize(cfg)
    except (RunDirError, ValueError) as error:
        sys.exit(f"make visualize: {error}")


if __name__ == "__main__":
    main()
