"""The report's opening sections: title, summary and setup (data, model, training, config)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

from convlens import registry
from convlens.provenance import HISTORY
from convlens.report import gallery
from convlens.report.assets import PARTS, parts_file
from convlens.report.format import epoch, pixels, sizes, split_result
from convlens.report.markdown import code, folded, table, text
from convlens.report.model_table import model_rows
from convlens.report.observations import accuracy_interval
from convlens.report.references import REFERENCES
from convlens.report.run_data import RunData, synthetic, training_node
from convlens.rundir import DEFAULT_SPLIT

Entries = Sequence[dict[str, Any]]
#: Report stage excluded from stage times: its own time is recorded only after the report is written.
REPORT_STAGE = "report"


def title(run: RunData) -> str:
    return (
        f"# convlens report: {text(run.experiment)}\n\nRun {code(run.label)}. Every number and figure below is "
        "read from that run directory; nothing is recomputed."
    )


def summary(run: RunData, entries: Entries, numbers: Mapping[str, int]) -> str:
    """Key facts; ``numbers`` maps each visualization section's key to its section number."""
    metrics, data = run.metrics, run.metrics["data"]
    rows = [
        ("experiment", text(run.experiment)),
        ("model", f"{text(metrics['model'])} ({metrics['parameters']:,} parameters)"),
        (
            "dataset",
            f"{text(data['name'])}: {sizes(data['sizes'])} images, {pixels(data['image_size'])} model input, "
            f"{len(run.class_names)} classes",
        ),
        ("data used", _data_used(run)),
        ("kind of data", _data_kind(run)),
        ("test accuracy", _test_accuracy(run)),
        *((("published reference", REFERENCE_ACCURACY[data["name"]]),) if data["name"] in REFERENCE_ACCURACY else ()),
        (
            "best epoch",
            f"{epoch(metrics.get('best_epoch'))} of {metrics['epochs']} (by validation accuracy)",
        ),
        ("total time", _total_time(run.provenance)),
    ]
    status = [_visualization_status(run, entries, numbers), *_stale_maps(run)]
    return "\n\n".join([table(("", ""), rows), *status])


def _test_accuracy(run: RunData) -> str:
    """Test accuracy and loss, with the accuracy's 95% interval and n where the confusion matrix is there."""
    result = split_result(run.metrics.get("test"))
    if run.confusion is None or not run.metrics.get("test"):
        return result
    low, high = accuracy_interval(run.confusion)
    views = str(run.config.get("data", {}).get("test_time_augmentation", "none"))
    averaged = (
        "" if views == "none" else f"; averaged over {code(views)} test-time views (validation and the maps: one)"
    )
    return f"{result}; 95% interval {low:.1%}-{high:.1%}, n = {int(run.confusion.sum()):,} test images{averaged}"


#: The summary's "published reference" row, by dataset name (:mod:`convlens.report.references`).
REFERENCE_ACCURACY = {name: reference.cited for name, reference in REFERENCES.items()}


def _data_kind(run: RunData) -> str:
    """Synthetic or real: a 99% on the built-in cartoons says nothing about photographs."""
    if synthetic(run.config):
        return ("**synthetic**: convlens's own cartoons with known parts, drawn from a seed; their accuracy says "
                "nothing about real photographs")  # fmt: skip
    return "real images"


def _stale_maps(run: RunData) -> list[str]:
    """A notice when the maps were drawn from files that have changed since (a resume's new checkpoint)."""
    stale = run.maps_stale
    if not stale:
        return []
    return [
        f"> **Stale:** the maps were drawn from an earlier {', '.join(code(path) for path in stale)} (its sha256 "
        f"differs now), so they explain another model than this report describes; `make visualize RUN={run.label}` "
        "draws them again."
    ]


def _data_used(run: RunData) -> str:
    """How much of each split the run used: Lightning's ``limit_*_batches`` can cut every epoch short."""
    counts, trainer, data = run.metrics["data"]["sizes"], run.config.trainer, run.config.data
    parts = []
    for split, batch_size, drop_last in (("train", data.batch_size, True), ("val", data.eval_batch_size, False),
                                         ("test", data.eval_batch_size, False)):  # fmt: skip
        limit, total = trainer.get(f"limit_{split}_batches"), counts.get(split)
        if limit is None or total is None:
            continue
        batches = total // batch_size if drop_last else -(-total // batch_size)
        used = min(int(limit), batches) if isinstance(limit, int) else round(float(limit) * batches)
        if used < batches:
            images = min(used * batch_size, total)
            parts.append(f"{split}: {used} of {batches} batches of {batch_size} ({images:,} of {total:,} images)")
    if not parts:
        return "every image of every split"
    return "; ".join(parts) + " per epoch (trainer.limit_*_batches)"


def setup(run: RunData) -> str:
    parts = [
        "### Data",
        _data_table(run),
        "### Model",
        folded(f"{text(run.metrics['model'])}: layers, output shapes, parameters, multiply-adds", _model_table(run)),
    ]
    return "\n\n".join([*parts, "### Training", _training_table(run), _config_block(run)])


def _visualization_status(run: RunData, entries: Entries, numbers: Mapping[str, int]) -> str:
    span = f"{min(numbers.values())}-{max(numbers.values())}"
    if run.manifest is None:
        return (
            f"**Visualizations missing:** sections {span} have no figures because the run has no "
            f"`visualizations/manifest.json`. Produce them with `make visualize RUN={run.label}`, "
            f"then `make report RUN={run.label}`."
        )
    ran = set(run.manifest.get("methods", {}))
    incomplete = [
        f"{numbers[section.key]} ({section.title})"
        for section in registry.SECTIONS
        if gallery.missing_methods(section, entries, ran)
    ]
    if not incomplete:
        return f"Visualizations: {len(entries)} figures in sections {span}{_candidates(run)}."
    return f"**Visualizations incomplete** in sections {', '.join(incomplete)}; each names what is missing."


def _candidates(run: RunData) -> str:
    """``, of images chosen among the first 1,000 of the 3,589 test images (...)`` where the visualize stage
    searched only part of its split: its "most confident mistake" is that part's, not the split's."""
    selection = (run.manifest or {}).get("selection") or {}
    split, searched = selection.get("split", DEFAULT_SPLIT), selection.get("max_candidates")
    total = (run.metrics.get("data", {}).get("sizes") or {}).get(split)
    if not isinstance(searched, int) or not isinstance(total, int) or searched >= total:
        return ""
    return (
        f", of images chosen among the first {searched:,} of the {total:,} {gallery.split_images(split)} "
        "(the visualize setting `selection.max_candidates`; the most confident mistakes and correct images shown "
        "and LIME's most confused pairs are theirs)"
    )


def _data_table(run: RunData) -> str:
    data, config = run.metrics["data"], run.config.data
    native = "x".join(str(side) for side in data.get("native_size") or [])
    rows = [
        ("dataset", text(data["name"])),
        ("images", sizes(data["sizes"])),
        *((("splits", text(data["splits_from"])),) if data.get("splits_from") else ()),
        ("classes", ", ".join(text(name) for name in run.class_names)),
        ("image size", f"{native} px stored, {pixels(data['image_size'])} model input"),
        ("channels", str(data["channels"])),
        ("normalization", f"mean {list(config.mean)}, std {list(config.std)}"),
        ("augmentation (training)", _augmentation(data.get("augment") or {})),
        ("test-time augmentation", text(config.get("test_time_augmentation", "none"))),
        *((("parts a map's shares are measured in", _parts(run)),) if parts_file(run) else ()),
    ]
    return table(("", ""), rows)


def _parts(run: RunData) -> str:
    """The parts the Findings measure map shares in, with their source and the figure that draws them."""
    regions = (run.evaluation or {}).get("regions") or {}
    names = ", ".join(text(name) for name in regions.get("parts") or [])
    source = f" ({text(regions['from'])})" if regions.get("from") else ""
    return f"{names}{source}: [drawn on sample images]({PARTS})"


def _augmentation(augment: dict[str, Any]) -> str:
    steps = []
    if augment.get("crop_padding"):
        fill = "" if augment.get("crop_fill", "constant") == "constant" else f" {augment['crop_fill']}"
        steps.append(f"random crop after {augment['crop_padding']}-px{fill} padding")
    if augment.get("hflip"):
        steps.append("horizontal flip")
    if augment.get("rotate_degrees"):
        steps.append(f"rotation up to ±{augment['rotate_degrees']:g}°")
    if augment.get("erase_prob"):
        low, high = augment.get("erase_scale", (0, 0))
        steps.append(f"random erasing (p={augment['erase_prob']:g}, area {low:g}-{high:g})")
    return ", ".join(steps) or "none"


def _model_table(run: RunData) -> str:
    size, channels = int(run.config.data.image_size), int(run.config.data.channels)
    rows = [
        (
            f"**{row.name}**" if row.name == "total" else code(row.name),
            " x ".join(map(str, row.output_shape)),
            f"{row.parameters:,}",
            f"{row.macs:,}",
        )
        for row in model_rows(run.config.model, channels, size)
    ]
    note = (
        f"Output shapes (channels x height x width) and multiply-adds for one {channels}x{size}x{size} input "
        "(convolutions and linear layers, counted by PyTorch's FlopCounterMode)."
    )
    return "\n\n".join([note, table(("stage", "output shape", "parameters", "multiply-adds"), rows)])


def _training_table(run: RunData) -> str:
    config = run.config
    rows = [
        ("optimizer", _settings(training_node(config, "optimizer"))),
        ("schedule", _settings(training_node(config, "scheduler"))),
        ("epochs", f"{run.metrics['epochs']} trained (max_epochs={config.trainer.max_epochs})"),
        ("batch size", f"{config.data.batch_size} (evaluation {config.data.eval_batch_size})"),
        ("label smoothing", f"{config.module.label_smoothing:g}"),
        ("precision", _precision(run)),
        ("seed", f"{config.seed} (deterministic={config.trainer.get('deterministic')})"),
    ]
    return table(("", ""), rows)


def _precision(run: RunData) -> str:
    """The precision training ran in, and the setting it was resolved from when that differs."""
    requested, used = str(run.config.trainer.precision), run.metrics.get("precision")
    return requested if used in (None, requested) else f"{used} (trainer.precision={requested})"


def _settings(node: Any) -> str:
    """``SGD (lr=0.2, momentum=0.9, ...)``: the class a config node builds and its arguments; ``none`` if none."""
    values = OmegaConf.to_container(node, resolve=True) if node else {}
    name = str(values.pop("_target_", None) or values.pop("name", None) or "none").rsplit(".", 1)[-1]
    shown = ", ".join(f"{key}={value}" for key, value in values.items() if not key.startswith("_"))
    return text(f"{name} ({shown})" if shown else name)


def _config_block(run: RunData) -> str:
    yaml = OmegaConf.to_yaml(run.config).strip().replace("```", "'''")
    return folded("Resolved config (config.yaml of the run)", f"```yaml\n{yaml}\n```")


def stage_runs(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every recorded run of the stages before the report (``provenance.json``'s history, oldest first, as
    :func:`convlens.provenance.read` checked it; none in a run made before 2026-12-08, whose file keeps each stage's
    latest run only)."""
    return [entry for entry in info.get(HISTORY) or [] if entry.get("stage") != REPORT_STAGE]


def _total_time(info: dict[str, Any]) -> str:
    """The stages' times as ``provenance.json`` records them: each stage's whole run (loading, data, writing),
    so training's is more than ``metrics.json``'s fitting time; on the machine and under the load they ran; a stage
    run more than once counts its latest run, and says so."""
    stages = info.get("stages", {})
    timed = {stage: seconds for stage, seconds in stages.items() if stage != REPORT_STAGE}
    runs = Counter(str(entry.get("stage")) for entry in stage_runs(info))
    parts = ", ".join(f"{text(stage)} {seconds:.1f} s" + (f" (the latest of {runs[stage]} runs)" if runs[stage] > 1
                      else "") for stage, seconds in timed.items())  # fmt: skip
    if not timed:
        return "not recorded"
    return (f"{sum(timed.values()):.1f} s ({parts}; each stage's whole run, loading and writing included, as "
            "`provenance.json` records it, on whatever else the machine ran then)")  # fmt: skip
