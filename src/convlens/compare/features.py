"""Feature inversion and activation maximization per architecture: the runs' own figures (manifest
entries, checked as the report checks them), copied into the comparison report. Both methods default
to the same two depths on every architecture (the stem's ReLU and ``layer4``'s output, see
:func:`convlens.models.layers.default_feature_layers`); the text names the layers each figure shows."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convlens.report.assets import available_entries
from convlens.report.markdown import code, text
from convlens.report.run_data import RunData
from convlens.rundir import VISUALIZATIONS
from convlens.untrusted import inside, safe_name

FIGURES = "figures"
#: The methods shown: their title and what their figures show.
METHODS = {
    "feature_inversion": (
        "Feature inversion",
        "An image whose activations at the layer match the test image's.",
    ),
    "activation_maximization": ("Activation maximization", "Images that most excite the layer's most active channels."),
}


def feature_section(names: Sequence[str], runs: Sequence[RunData], report_dir: Path) -> str:
    """Per method a subsection with each architecture's figure(s), copied into ``report_dir``."""
    parts = []
    for method, (heading, caption) in METHODS.items():
        parts += [f"### {heading}", caption]
        for name, run in zip(names, runs, strict=True):
            entries = [entry for entry in available_entries(run) if entry["method"] == method]
            if not entries:
                parts.append(f"- {code(name)}: no figure ({_why(run, method)})")
                continue
            for entry in entries:
                link = _copy(run, entry, name, report_dir)
                where = f"{_layers(entry.get('layer'))}{_image(entry)}"
                parts.append(f"**{code(name)}** at {where}:\n\n![{text(name)}]({link})")
    return "\n\n".join(parts)


def _copy(run: RunData, entry: dict[str, Any], name: str, report_dir: Path) -> str:
    link = f"{FIGURES}/{safe_name(name, 'model')}/{entry['file']}"
    (report_dir / link).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(inside(run.root, VISUALIZATIONS, entry["file"]), report_dir / link)
    return link


def _layers(layer: Any) -> str:
    layers = [layer] if isinstance(layer, str) else list(layer or [])
    return ", ".join(code(name) for name in layers) or "its default layers"


def _image(entry: dict[str, Any]) -> str:
    images = [image for image in entry.get("images") or [] if isinstance(image, dict)]
    shown = [f"#{text(image.get('image_index'))} ({text(image.get('true_label'))})" for image in images]
    return f", test image {', '.join(shown)}" if shown else ""


def _why(run: RunData, method: str) -> str:
    summary = ((run.manifest or {}).get("methods") or {}).get(method)
    if summary is None:
        command = f'make visualize RUN={run.label} ARGS="methods=[{method}]"'
        return f"the method was not run; {code(command)} draws it"
    return text(summary.get("skipped") or "the run's manifest lists no figure")
