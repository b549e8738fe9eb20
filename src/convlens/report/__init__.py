"""The report stage: a run directory in, ``reports/<experiment>/report.md`` and ``report.html`` out."""

from convlens.report.build import build_report, build_reports

__all__ = ["build_report", "build_reports"]
