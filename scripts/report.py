"""`make report`: write reports/<experiment>/<run>/report.md (+ .html) for runs (logic in convlens.report)."""

import sys

import hydra
from omegaconf import DictConfig

from convlens.report import build_reports
from convlens.report.schema import register_schema
from convlens.rundir import RunDirError, resolve_runs

register_schema()


@hydra.main(config_path="../conf/report", config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        runs = resolve_runs(cfg.run, cfg.experiment, cfg.outputs_dir)
    except RunDirError as error:
        sys.exit(f"make report: {error}")
    errors = build_reports(runs, cfg.reports_dir)
    if errors:
        sys.exit("make report: " + "\n".join(errors))


if __name__ == "__main__":
    main()
