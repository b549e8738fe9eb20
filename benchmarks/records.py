"""A benchmark run's output: the run appended to ``<out>/<name>.json`` with its command, environment
and load, and its tables printed on stdout.

Rendering docs/benchmarks.md from the results is summarize.py's job (run_all.py calls it once at the
end); this module only writes the results, so it never imports summarize.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from machine import LoadMonitor, environment
from paths import QUICK_RESULTS_DIR, RESULTS_DIR

from convlens import atomic, provenance
from convlens.report import markdown


def results_dir(args: argparse.Namespace) -> Path:
    """Quick runs go to a temp folder unless --out says otherwise, so they never mix with real results."""
    if args.out is not None:
        return args.out
    return QUICK_RESULTS_DIR if args.quick else RESULTS_DIR


def command_line(argv: list[str] | None = None) -> str:
    """The command as recorded: absolute paths in it (``/x``, ``--flag=/x``, ``key=/x``) relative to the
    working directory, so no machine-specific prefix lands in the results."""
    script, *arguments = sys.argv if argv is None else argv
    return shlex.join(["python", provenance.portable_path(script), *map(_portable_argument, arguments)])


def _portable_argument(argument: str) -> str:
    prefix, separator, value = argument.partition("=") if "=" in argument else ("", "", argument)
    return f"{prefix}{separator}{provenance.portable_path(value) if value.startswith('/') else value}"


def write_result(
    args: argparse.Namespace, name: str, run: dict[str, Any], load: LoadMonitor, device: torch.device
) -> Path:
    """Append this run to ``<out>/<name>.json`` (``{"benchmark": name, "runs": [...]}``), so every run
    made stays on record. It only writes: summarize.py renders docs/benchmarks.md from these files."""
    path = results_dir(args) / f"{name}.json"
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command_line(),
        "quick": args.quick,
        "note": args.note,
        "environment": environment(device),
        "load": load.stop(),
        **run,
    }
    existing = json.loads(path.read_text()) if path.exists() else {"benchmark": name, "runs": []}
    existing["runs"].append(record)
    atomic.write_text(path, json.dumps(existing, indent=1) + "\n")
    print(f"results appended to {path}")
    if path.parent == RESULTS_DIR:
        print("docs/benchmarks.md: rendered by run_all.py at its end, or by python benchmarks/summarize.py")
    return path


def record(
    args: argparse.Namespace,
    name: str,
    device: torch.device,
    measure: Callable[[], dict[str, Any]],
    show: Callable[[dict[str, Any], torch.device], None],
) -> dict[str, Any]:
    """The end of every script's ``main``: ``measure()`` the run while the load is monitored, ``show`` its
    tables on stdout, append it to ``<out>/<name>.json``; returns the run."""
    load = LoadMonitor()
    run = measure()
    show(run, device)
    write_result(args, name, run, load, device)
    return run


def num(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, whole numbers from ``10 ** (digits - 1)`` on; blank for None."""
    if value is None:
        return ""
    return f"{value:.{digits}g}" if abs(value) < 10 ** (digits - 1) else f"{value:.0f}"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table of raw values for stdout: floats and None through :func:`num`, the rest as text."""
    cells = [[num(value) if value is None or isinstance(value, float) else str(value) for value in row] for row in rows]
    return markdown.table(columns, cells)
