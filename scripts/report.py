"""`make report`: write reports/<experiment>/<run>/report.md (+ .html) for runs (logic in convlens.report)."""

import sys

import hydra
from omegaconf import DictConfig

from convlens.report import report
from convlens.report.schema import register_schema
from convlens.rundir import RunDirError
from convlens.untrusted import UntrustedInputError

register_schema()


@hydra.main(config_path="../conf/report", config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        report(cfg)
    except (RunDirError, UntrustedInputError, ValueError) as error:
        sys.exit(f"make report: {error}")


if __name__ == "__main__":
    main()
