"""Independent tasks shared out among forked worker processes on the CPU.

The stages' work (one explanation method, one evaluation family) runs in small batches, where a
second torch thread gains little and a second process computing another task gains nearly 2x
(``docs/benchmarks.md``). Workers are forked, so they inherit the model, the images and the task
without pickling them; only the items (names) go out and the results come back, between this
process and its own children. Each worker asks the kernel to kill it when the stage's process dies,
so a killed stage leaves no worker behind. Without ``fork`` the tasks run in turn.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch

#: Linux prctl option: the signal a process receives when its parent dies.
_PR_SET_PDEATHSIG = 1
#: The task the forked workers inherit (set just before the fork).
_forked_task: Callable[[Any], Any] | None = None


def forked_map(task: Callable[[Any], Any], items: Sequence[Any], processes: int, threads: int = 1) -> list[Any]:
    """``[task(item) for item in items]``, in ``processes`` forked workers of ``threads`` torch threads
    each when there are two or more; items are handed out one at a time in their order, so list the
    longest first and the workers finish together."""
    processes = min(processes, len(items))
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [task(item) for item in items]
    global _forked_task
    _forked_task = task
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(processes, initializer=_start_worker, initargs=(threads,)) as pool:
            results = pool.map(_run_forked, items, chunksize=1)
            # Workers that exit on their own remove their multiprocessing temp folders (a socket through
            # which they sent tensors); the terminate() on leaving the block would leave one behind each.
            pool.close()
            pool.join()
            return results
    finally:
        _forked_task = None


def _run_forked(item: Any) -> Any:
    assert _forked_task is not None, "set by forked_map before the fork"
    return _forked_task(item)


def _start_worker(threads: int) -> None:
    """Ask Linux to send SIGKILL to this worker when the stage's process dies (no-op elsewhere), and
    give it ``threads`` torch threads."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    torch.set_num_threads(threads)
