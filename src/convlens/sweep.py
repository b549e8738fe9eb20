"""`make sweep`: one experiment over several seeds (and any grid in the overrides) as a Hydra multirun,
then the sweep report (:mod:`convlens.report.sweep`).

The sweep gets a new folder ``<outputs>/sweeps/<experiment>/<time>[-N]`` (created like a run directory, so
two sweeps never share one); its runs are ``<sweep>/<experiment>/<time>[-N]``, unique in the same way,
and Hydra keeps the sweep's config (``multirun.yaml``) beside them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from convlens.report.sweep import DamagedRuns, build_sweep_report
from convlens.rundir import create_run_dir
from convlens.stage import script
from convlens.untrusted import safe_name


def multirun_command(experiment: str, seeds: int, sweep_dir: Path, overrides: list[str]) -> list[str]:
    """scripts/train.py --multirun over ``seed=0..seeds-1`` and the overrides' grid, runs in ``sweep_dir``."""
    return [
        sys.executable, str(script("train")), "--multirun", f"experiment={experiment}", f"seed=range(0,{seeds})",
        f"paths.outputs_dir={sweep_dir}", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=.", *overrides,
    ]  # fmt: skip


def report(sweep_dir: Path, reports_dir: str) -> Path:
    """The sweep report's ``report.md``; exits non-zero naming each damaged run (the report of the others
    is written first)."""
    try:
        return build_sweep_report(sweep_dir, reports_dir) / "report.md"
    except DamagedRuns as error:
        sys.exit(f"make sweep: {error}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="the experiment to sweep (ignored with --report)")
    parser.add_argument("--report", metavar="SWEEP_DIR", help="only report on an existing sweep folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--outputs-dir", default="outputs")
    parser.add_argument("--reports-dir", default="reports")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for train; a,b,c values form a grid")
    args = parser.parse_intermixed_args(argv)
    if args.report:
        print(f"sweep report: {report(Path(args.report), args.reports_dir)}")
        return
    if args.seeds < 1:
        sys.exit("make sweep: SEEDS must be >= 1")
    sweep_dir = create_run_dir(Path(args.outputs_dir) / "sweeps" / safe_name(args.experiment, "EXPERIMENT"))
    print(f"sweep folder: {sweep_dir}", flush=True)
    trained = subprocess.run(multirun_command(args.experiment, args.seeds, sweep_dir, args.overrides))
    print(f"sweep report: {report(sweep_dir, args.reports_dir)}")
    if trained.returncode != 0:
        sys.exit(f"make sweep: a run failed (exit {trained.returncode}); the report shows the runs that finished")
