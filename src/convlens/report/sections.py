"""The report's sections, one function each, every one returning markdown built from the run's files.

Numbers are formatted here and nowhere else; nothing depends on the clock or the machine, so the
same run always gives the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from convlens.report import gallery
from convlens.report.assets import CONFUSION_MATRIX, LEARNING_CURVES
from convlens.report.model_table import model_rows
from convlens.report.observations import confused_pairs, most_confused_with, observations, ranked_classes
from convlens.report.run_data import RunData

Entries = Sequence[dict[str, Any]]

#: Report stage excluded from stage times: its own time is recorded only after the report is written.
REPORT_STAGE = "report"


def title(run: RunData) -> str:
    return (
        f"# convlens report: {run.experiment}\n\nRun `{run.label}`. Every number and figure below is read from "
        "that run directory (config.yaml, metrics.json, TensorBoard events, confusion_matrix.csv, "
        "visualizations/, provenance.json); nothing is recomputed."
    )


def summary(run: RunData, entries: Entries) -> str:
    metrics, data = run.metrics, run.metrics["data"]
    rows = [
        ("experiment", run.experiment),
        ("model", f"{metrics['model']} ({metrics['parameters']:,} parameters)"),
        (
            "dataset",
            f"{data['name']}: {_sizes(data['sizes'])} images, {_pixels(data['image_size'])} model input, "
            f"{len(run.class_names)} classes",
        ),
        ("test accuracy", _split_result(metrics.get("test"))),
        ("best epoch", f"{_epoch(metrics.get('best_epoch'))} of {metrics['epochs']} (by validation accuracy)"),
        ("total time", _total_time(run.provenance.get("stages", {}))),
    ]
    return "\n\n".join(["## 1. Summary", _table(("", ""), rows), _visualization_status(run, entries)])


def setup(run: RunData) -> str:
    parts = ["## 2. Setup", "### Data", _data_table(run), "### Model", _model_table(run)]
    parts += ["### Training", _training_table(run), _config_block(run)]
    return "\n\n".join(parts)


def learning_progress(run: RunData) -> str:
    curves = run.curves
    if not len(curves):
        return "## 3. Learning progress\n\nThe run's TensorBoard events hold no per-epoch training scalars."
    tags = ("train/loss", "train/acc", "val/loss", "val/acc", *((curves.lr_tag,) if curves.lr_tag else ()))
    rows = [(epoch, *(_value(curves.values[tag][i]) for tag in tags)) for i, epoch in enumerate(curves.epochs)]
    header = ("epoch", *(tag if tag != curves.lr_tag else "learning rate" for tag in tags))
    figure = f"![Learning curves]({LEARNING_CURVES})"
    note = "Per-epoch values from the TensorBoard event files in `tensorboard/` (epochs counted from 1)."
    return "\n\n".join(["## 3. Learning progress", note, figure, _table(header, rows)])


def results(run: RunData) -> str:
    metrics = run.metrics
    splits = [(split, _percent(metrics[split]["acc"]), _value(metrics[split]["loss"]))
              for split in ("train", "val", "test") if metrics.get(split)]  # fmt: skip
    parts = ["## 4. Results", _table(("split", "accuracy", "loss"), splits), _results_note()]
    per_class = metrics.get("per_class_accuracy") or {}
    if per_class:
        parts += ["### Per-class test accuracy", _per_class_table(run, per_class)]
    if run.confusion is not None:
        parts += ["### Confusion matrix (test set)", f"![Confusion matrix]({CONFUSION_MATRIX})"]
    test_accuracy = (metrics.get("test") or {}).get("acc")
    lines = observations(test_accuracy, per_class, run.confusion, run.class_names)
    if lines:
        parts += ["### Observations", "\n".join(f"- {line}" for line in lines)]
    return "\n\n".join(parts)


def visual_section(section: gallery.VisualSection, run: RunData, entries: Entries) -> str:
    """Sections 5-13: every method of the section with its figures, and a note for missing methods."""
    parts = _visual_header(section, run, entries)
    methods = (run.manifest or {}).get("methods", {})
    for method in section.methods:
        chosen = gallery.method_entries(entries, method, run.class_names)
        if chosen:
            parts.append(gallery.method_block(method, chosen, methods.get(method)))
    return "\n\n".join(parts)


def lime_per_class(section: gallery.VisualSection, run: RunData, entries: Entries) -> str:
    """Section 14: per class, how well the model recognizes it, what it is confused with, LIME's figures."""
    parts = _visual_header(section, run, entries)
    if not any(entry["method"] in section.methods for entry in entries):
        return "\n\n".join(parts)
    parts += _lime_lead(run)
    per_class = run.metrics.get("per_class_accuracy") or {}
    for label, name in enumerate(run.class_names):
        chosen = [
            entry for method in section.methods for entry in gallery.method_entries(entries, method, run.class_names)
            if gallery.image_class(entry) == name
        ]  # fmt: skip
        parts.append(_lime_class(run, label, name, per_class.get(name), chosen))
    return "\n\n".join(parts)


def provenance(run: RunData) -> str:
    info = run.provenance
    git = info.get("git", {})
    dirty = {True: "yes", False: "no", None: "unknown"}[git.get("dirty")]
    rows = [("git commit", f"`{git.get('commit') or 'unknown'}`"), ("uncommitted changes", dirty),
            ("command", f"`{info.get('command', '')}`"), ("seed", str(info.get("seed")))]  # fmt: skip
    rows += [(f"command ({stage})", f"`{command}`") for stage, command in sorted(info.get("stage_commands", {}).items())
             if stage != REPORT_STAGE]  # fmt: skip
    parts = ["## 15. Provenance", _table(("", ""), rows)]
    parts += ["### Stage wall time", _stage_table(info.get("stages", {}))]
    parts += ["### Hardware", _table(("", ""), sorted((k, str(v)) for k, v in info.get("hardware", {}).items()))]
    packages = sorted((name, version or "not installed") for name, version in info.get("packages", {}).items())
    parts += ["### Package versions", _table(("package", "version"), packages), "### Data files", _data_files(info)]
    return "\n\n".join(parts)


def _visual_header(section: gallery.VisualSection, run: RunData, entries: Entries) -> list[str]:
    """Heading, what the section shows, and which of its methods are missing with how to produce them."""
    ran = _ran_methods(run)
    missing, empty = gallery.missing_methods(section, entries, ran), gallery.empty_methods(section, entries, ran)
    notes = [gallery.missing_note(missing, run.label)] if missing else []
    summaries = (run.manifest or {}).get("methods", {})
    notes += [gallery.skipped_note(method, summaries[method].get("skipped")) for method in empty]
    return [f"## {section.number}. {section.title}", section.about, *notes]


def _ran_methods(run: RunData) -> set[str]:
    return set((run.manifest or {}).get("methods", {}))


def _visualization_status(run: RunData, entries: Entries) -> str:
    if run.manifest is None:
        return (
            "**Visualizations missing:** sections 5-14 have no figures because the run has no "
            f"`visualizations/manifest.json`. Produce them with `make visualize RUN={run.label}`, "
            f"then `make report RUN={run.label}`."
        )
    ran = _ran_methods(run)
    incomplete = [
        f"{section.number} ({section.title})"
        for section in gallery.VISUAL_SECTIONS
        if gallery.missing_methods(section, entries, ran)
    ]
    if not incomplete:
        return f"Visualizations: {len(entries)} figures in sections 5-14."
    return f"**Visualizations incomplete** in sections {', '.join(incomplete)}; each names what is missing."


def _data_table(run: RunData) -> str:
    data, config = run.metrics["data"], run.config.data
    native = "x".join(str(side) for side in data.get("native_size") or [])
    rows = [
        ("dataset", data["name"]),
        ("images", _sizes(data["sizes"])),
        ("classes", ", ".join(run.class_names)),
        ("image size", f"{native} px stored, {_pixels(data['image_size'])} model input"),
        ("channels", str(data["channels"])),
        ("normalization", f"mean {list(config.mean)}, std {list(config.std)}"),
        ("augmentation (training)", _augmentation(data.get("augment") or {})),
        ("test-time augmentation", str(config.get("test_time_augmentation", "none"))),
    ]
    return _table(("", ""), rows)


def _augmentation(augment: dict[str, Any]) -> str:
    steps = []
    if augment.get("crop_padding"):
        steps.append(f"random crop after {augment['crop_padding']}-px padding")
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
        (f"**{row.name}**" if row.name == "total" else f"`{row.name}`", " x ".join(map(str, row.output_shape)),
         f"{row.parameters:,}", f"{row.macs:,}")
        for row in model_rows(run.config.model, channels, size)
    ]  # fmt: skip
    note = (
        f"Output shapes (channels x height x width) and multiply-adds for one {channels}x{size}x{size} input "
        "(convolutions and linear layers, counted by PyTorch's FlopCounterMode)."
    )
    return "\n\n".join([note, _table(("stage", "output shape", "parameters", "multiply-adds"), rows)])


def _training_table(run: RunData) -> str:
    config = run.config
    rows = [
        ("optimizer", _settings(_training_node(config, "optimizer"))),
        ("schedule", _settings(_training_node(config, "scheduler"))),
        ("epochs", f"{run.metrics['epochs']} trained (max_epochs={config.trainer.max_epochs})"),
        ("batch size", f"{config.data.batch_size} (evaluation {config.data.eval_batch_size})"),
        ("label smoothing", f"{config.module.label_smoothing:g}"),
        ("precision", _precision(run)),
        ("seed", f"{config.seed} (deterministic={config.trainer.get('deterministic')})"),
    ]
    return _table(("", ""), rows)


def _precision(run: RunData) -> str:
    """The precision training ran in, and the setting it was resolved from when that differs."""
    requested, used = str(run.config.trainer.precision), run.metrics.get("precision")
    return requested if used in (None, requested) else f"{used} (trainer.precision={requested})"


def _training_node(config: Any, key: str) -> Any:
    """``optimizer`` / ``scheduler``; runs made before those config groups kept them under ``module``."""
    return config[key] if key in config else OmegaConf.select(config, f"module.{key}")


def _settings(node: Any) -> str:
    """``SGD (lr=0.2, momentum=0.9, ...)``: the class a config node builds and its arguments; ``none`` if none."""
    values = OmegaConf.to_container(node, resolve=True) if node else {}
    name = str(values.pop("_target_", None) or values.pop("name", None) or "none").rsplit(".", 1)[-1]
    shown = ", ".join(f"{key}={value}" for key, value in values.items() if not key.startswith("_"))
    return f"{name} ({shown})" if shown else name


def _config_block(run: RunData) -> str:
    text = OmegaConf.to_yaml(run.config).strip()
    return (
        '<details markdown="1">\n<summary>Resolved config (config.yaml of the run)</summary>\n\n'
        f"```yaml\n{text}\n```\n\n</details>"
    )


def _per_class_table(run: RunData, per_class: dict[str, float]) -> str:
    rows = []
    for label, name in enumerate(run.class_names):
        count = int(run.confusion[label].sum()) if run.confusion is not None else "?"
        rows.append((name, _percent(per_class.get(name)), str(count), _confused_text(run, label)))
    return _table(("class", "accuracy", "test images", "most often predicted instead"), rows)


def _confused_text(run: RunData, label: int) -> str:
    pair = most_confused_with(run.confusion, run.class_names, label) if run.confusion is not None else None
    return f"{pair.predicted} ({pair.count}, {pair.share:.1%})" if pair else "-"


def _results_note() -> str:
    return (
        "Validation and test numbers are those of the best checkpoint (highest validation accuracy); "
        "training numbers are the running averages of the last epoch, on augmented images."
    )


def _lime_lead(run: RunData) -> list[str]:
    """Points LIME's figures at the results: the best and worst class and the most frequent confusion."""
    ranking = ranked_classes(run.metrics.get("per_class_accuracy") or {})
    if not ranking or run.confusion is None:
        return []
    (best, best_acc), (worst, worst_acc) = ranking[0], ranking[-1]
    text = f"The model recognizes **{best}** best ({best_acc:.1%}) and **{worst}** worst ({worst_acc:.1%})."
    pairs = confused_pairs(run.confusion, run.class_names, k=1)
    if pairs:
        text += (
            f" Its most frequent mistake is **{pairs[0].true}** taken for **{pairs[0].predicted}** "
            f"({pairs[0].count} test images): compare what LIME finds in those classes' images below."
        )
    return [text]


def _lime_class(run: RunData, label: int, name: str, accuracy: float | None, entries: Entries) -> str:
    confused = _confused_text(run, label)
    parts = [f"### {name}: {_percent(accuracy)} of test images correct; most often predicted instead: {confused}"]
    scores = _mean_scores(entries)
    if scores:
        parts.append("LIME evidence, averaged over this class's figures: " + ", ".join(scores) + ".")
    parts += [gallery.figure(entry) for entry in entries] or ["No LIME figure for this class."]
    return "\n\n".join(parts)


def _mean_scores(entries: Entries) -> list[str]:
    keys = sorted({key for entry in entries for key in gallery.extra_scores(entry)})
    means = []
    for key in keys:
        values = [float(entry[key]) for entry in entries if key in gallery.extra_scores(entry)]
        means.append(f"{key.replace('_', ' ')} {sum(values) / len(values):.3g}")
    return means


def _stage_table(stages: dict[str, float]) -> str:
    rows = [(stage, f"{seconds:.1f} s") for stage, seconds in stages.items() if stage != REPORT_STAGE]
    note = "The report stage adds its own time to provenance.json after writing this report."
    return "\n\n".join([_table(("stage", "wall time"), rows), note])


def _data_files(info: dict[str, Any]) -> str:
    files = info.get("data_files") or {}
    if not files:
        return "No data files: the dataset is generated from the seed in the config."
    return _table(("file", "sha256"), [(f"`{path}`", f"`{digest}`") for path, digest in sorted(files.items())])


def _total_time(stages: dict[str, float]) -> str:
    timed = {stage: seconds for stage, seconds in stages.items() if stage != REPORT_STAGE}
    parts = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timed.items())
    return f"{sum(timed.values()):.1f} s ({parts})" if timed else "not recorded"


def _sizes(sizes: dict[str, int]) -> str:
    return " / ".join(f"{sizes[split]:,} {split}" for split in ("train", "val", "test") if split in sizes)


def _pixels(size: int) -> str:
    return f"{size}x{size} px"


def _split_result(result: dict[str, float] | None) -> str:
    return f"{_percent(result['acc'])} (loss {_value(result['loss'])})" if result else "not evaluated"


def _epoch(epoch: int | None) -> str:
    return "-" if epoch is None else str(epoch + 1)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
