"""The report stage: a run directory in, ``reports/<experiment>/<run>/report.md`` and ``report.html`` out."""

from convlens.report.build import build_report, report

__all__ = ["build_report", "report"]
