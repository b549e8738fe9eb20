"""Running the planned methods, in forked worker processes on the CPU.

The methods are independent and each runs on small batches, where a second torch thread gains
little; a second process computing another method gains nearly 2x (``docs/benchmarks.md``).
Workers are forked, so they inherit the model and the chosen images without pickling; only the
manifest entries come back. Each worker asks the kernel to kill it when the stage's process dies,
so a killed stage leaves no worker writing behind it. A GPU (which a forked process cannot use) or
a platform without ``fork`` runs the methods in turn.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from pathlib import Path

from convlens.visualize.context import Context
from convlens.visualize.methods import MethodResult, Planned, run_method

#: Linux prctl option: the signal a process receives when its parent dies.
_PR_SET_PDEATHSIG = 1
#: What forked workers inherit (set just before the fork): the context, the plan and the output folder.
_forked_stage: tuple[Context, dict[str, Planned], Path] | None = None


def run_methods(ctx: Context, planned: dict[str, Planned], out_dir: Path, workers: int) -> dict[str, MethodResult]:
    """Every planned method, in ``workers`` processes where that helps; results in plan order.
    Long-running methods are handed out first, so that the workers finish together."""
    processes = min(workers, len(planned))
    if processes <= 1 or ctx.device.type != "cpu" or "fork" not in multiprocessing.get_all_start_methods():
        return {name: run_method(ctx, method, out_dir) for name, method in planned.items()}
    global _forked_stage
    _forked_stage = (ctx, planned, out_dir)
    order = sorted(planned, key=lambda name: not planned[name].spec.long_running)
    try:
        with multiprocessing.get_context("fork").Pool(processes, initializer=_die_with_parent) as pool:
            results = dict(zip(order, pool.map(_run_forked_method, order, chunksize=1), strict=True))
    finally:
        _forked_stage = None
    return {name: results[name] for name in planned}


def _run_forked_method(name: str) -> MethodResult:
    assert _forked_stage is not None, "set by run_methods before the fork"
    ctx, planned, out_dir = _forked_stage
    return run_method(ctx, planned[name], out_dir)


def _die_with_parent() -> None:
    """Ask Linux to send SIGKILL to this worker when the stage's process dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
