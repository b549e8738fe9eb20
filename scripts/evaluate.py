"""`make evaluate`: score the maps of visualized runs (Hydra entry point; the logic is in convlens.evaluate)."""

import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # lime draws a progress bar per explanation; read at import

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from convlens.evaluate import evaluate  # noqa: E402
from convlens.evaluate.schema import register_schema  # noqa: E402
from convlens.rundir import RunDirError  # noqa: E402

register_schema()


@hydra.main(config_path="../conf/evaluate", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except (RunDirError, ValueError) as error:
        sys.exit(f"make evaluate: {error}")


if __name__ == "__main__":
    main()
