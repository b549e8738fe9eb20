"""`make bench`: run the benchmark scripts in turn. Each prints its table and appends its run to
``<out>/<name>.json``; when that is the default benchmarks/results/, the tables of docs/benchmarks.md
are rendered again from those files once at the end (summarize.py). --quick runs go to a temp folder
unless --out is given.

The long time-to-accuracy benchmark runs only with --with-training; --quick runs it as a one-batch smoke.
Examples: ``make bench``, ``make bench ARGS="--with-training --time-budget 3600"``,
``python benchmarks/run_all.py --quick --data-dir /nowhere --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

import arguments
import paths
import records
import summarize

BENCHMARKS = (
    "throughput",
    "lightning_overhead",
    "profile_step",
    "precision_layout",
    "conv_weight_grad",
    "imputation_chunks",
    "corner_bias",
    "border_share",
    "ig_steps",
    "lime_benchmark",
    "evaluation_speed",
)
TRAINING = "time_to_accuracy"
PIPELINE = ("throughput", "lightning_overhead", "profile_step")  # the scripts that take --precision


def main(argv: list[str] | None = None) -> int:
    parents = [arguments.SHARED_FLAGS, arguments.PRECISION_FLAG]
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=parents)
    p.add_argument("--only", nargs="+", choices=(*BENCHMARKS, TRAINING), help="run just these")
    p.add_argument("--with-training", action="store_true", help=f"also run {TRAINING} (long)")
    p.add_argument("--epochs", type=int, help=f"{TRAINING}: trainer.max_epochs")
    p.add_argument("--time-budget", type=float, help=f"{TRAINING}: seconds of training per experiment")
    args = p.parse_args(argv)

    names = list(args.only or BENCHMARKS)
    if not args.only and (args.with_training or args.quick):
        names.append(TRAINING)
    common = ["--data-dir", str(args.data_dir), "--device", args.device, "--note", args.note]
    common += ["--quick"] if args.quick else []
    common += ["--threads", str(args.threads)] if args.threads else []
    common += ["--out", str(args.out)] if args.out else []
    failures = []
    for name in names:
        extra = ["--precision", args.precision] if name in PIPELINE else []
        if name == TRAINING:
            extra += ["--epochs", str(args.epochs)] if args.epochs else []
            extra += ["--time-budget", str(args.time_budget)] if args.time_budget else []
        print(f"\n=== {name} {' '.join(common + extra)}", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(name).main(common + extra)
        except Exception:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            failures.append(name)
        print(f"=== {name}: {time.perf_counter() - started:.0f} s", flush=True)

    if records.results_dir(args) == paths.RESULTS_DIR:  # the runs that did finish are on record
        summarize.main([])
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
