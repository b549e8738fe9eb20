"""`make compare`: several architectures trained on the same data, explained by the same methods on the
same images, scored by the same metrics, in one report (docs/compare.md)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from convlens.compare.report import shown_path, write_report
from convlens.compare.runs import CompareError, prepare_runs
from convlens.compare.schema import CompareConfig, check_names
from convlens.rundir import CONF, RUN_NAME_FORMAT

log = logging.getLogger(__name__)

__all__ = ["CompareError", "compare"]


def compare(cfg: DictConfig | CompareConfig) -> Path:
    """Check the names, get a run of every model, write the comparison report; returns its folder."""
    settings: CompareConfig = cfg if isinstance(cfg, CompareConfig) else OmegaConf.to_object(cfg)  # type: ignore[assignment]
    check_names(settings, CONF)
    started = time.perf_counter()
    stamp = datetime.now().strftime(RUN_NAME_FORMAT)
    runs = prepare_runs(settings, stamp)
    folder = write_report(settings, runs, stamp)
    log.info("comparison of %s written to %s in %.1f s", ", ".join(settings.models),
             Path(shown_path(folder)) / "report.md", time.perf_counter() - started)  # fmt: skip
    return folder
