"""The structured schema of ``conf/report/report.yaml``: a misspelt key or a wrong type is an error."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

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
