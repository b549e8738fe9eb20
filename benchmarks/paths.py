"""Where the project, its benchmark results and its data lie, in one place: every benchmark module
and script derives its paths from ``ROOT`` here, so moving a module never breaks a path."""

from __future__ import annotations

import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"
RESULTS_DIR = ROOT / "benchmarks" / "results"
QUICK_RESULTS_DIR = Path(tempfile.gettempdir()) / "convlens-bench-quick"
CIFAR10_CONF = ROOT / "conf" / "data" / "cifar10.yaml"
