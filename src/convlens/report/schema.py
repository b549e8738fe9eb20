"""The structured schema of ``conf/report/report.yaml``: a misspelt key or a wrong type is an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback

SCHEMA_NAME = "report_schema"


@dataclass
class ReportConfig:
    """``run`` (a run directory) or the latest run of ``experiment`` (None: of every experiment),
    found under ``outputs_dir``; reports go to ``reports_dir``."""

    run: str | None = None
    experiment: str | None = None
    outputs_dir: str = "outputs"
    reports_dir: str = "reports"


def register_schema() -> None:
    """Make the schema known to Hydra before composing ``conf/report/report.yaml``."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=ReportConfig)


class RefuseMultirun(Callback):
    """``scripts/report.py -m`` is refused before Hydra writes its ``multirun/`` folder into the working
    directory: one report run already covers every run that ``run`` / ``experiment`` names. Hydra turns a
    callback's exception into a warning and goes on, so the refusal is an exit."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        raise SystemExit(
            "make report: -m/--multirun is refused (it would write a multirun/ folder here); one report run "
            "covers every run that run= or experiment= names, or the latest run of every experiment"
        )
