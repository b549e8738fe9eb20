"""Has training converged? Sentences computed from the per-epoch curves and the best checkpoint's numbers,
each with its threshold, for the Findings.

Validation accuracy that rose by at least :data:`STILL_RISING` over the last epoch, with the best epoch
the last, means the run stopped while it was still learning, unless the rise lies within the noise of two
validation passes (:func:`_noise`), where it is "not shown converged". Training accuracy is the running mean over
the last epoch's augmented batches with dropout on, which lowers it: when it trails validation accuracy
by more than :data:`TRAILING_GAP`, a sentence says so and that this is no evidence of underfitting (an
earlier version called it underfitting; a FER2013 run that trailed by 3.4 points while validation
accuracy rose 6.5 points in its last epoch was not shown to underfit by it). Runs since 2026-12-06 also
record the best checkpoint's accuracy on un-augmented training images in eval mode (``train_clean``,
:mod:`convlens.training.clean_accuracy`), which can be set beside validation accuracy: more than
:data:`OVERFIT_GAP` above it, with the two 95% Wilson intervals apart, is called overfitting; that
sentence replaces the caveat. On a real dataset with a published reference (:mod:`convlens.report.references`),
clean training accuracy whose whole interval lies more than :data:`UNDERFIT_GAP` under the reference's *test*
accuracy is called underfitting (grader review of a 2-epoch FER2013 run: 47% on its own training images, 73%
for the reference, and the report said only "no sign of overfitting").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from convlens.report.observations import accuracy_bounds
from convlens.report.references import REFERENCES

#: Validation accuracy gained over the last epoch (as a fraction) above which training is still rising.
STILL_RISING = 0.005
#: Running training accuracy this far below validation accuracy (as a fraction) gets its caveat.
TRAILING_GAP = 0.01
#: Clean training accuracy this far above validation accuracy (as a fraction, intervals apart) is overfitting.
OVERFIT_GAP = 0.05
#: Clean training accuracy whose interval's top lies this far under the reference's test accuracy underfits.
UNDERFIT_GAP = 0.05


def convergence(val_accuracy: Sequence[float | None], best_epoch: int | None, metrics: Mapping[str, Any],
                schedule: str | None = None, val_loss: Sequence[float | None] = ()) -> list[str]:  # fmt: skip
    """Sentences on the trend (``val_accuracy`` per epoch, ``best_epoch`` 0-based; ``schedule`` the class name of
    the learning-rate schedule) and on overfitting (clean training accuracy against validation accuracy), or, for
    a run without the clean number, on a running training accuracy that trails validation accuracy."""
    values = [value for value in val_accuracy if value is not None]
    losses = [value for value in val_loss if value is not None]
    lines = [_trend(values, best_epoch, schedule, _val_images(metrics), losses)] if values else []
    underfit = _underfit(metrics, losses, schedule)
    gap = _fit_gap(metrics, stated=underfit is not None)
    return lines + ([underfit] if underfit else []) + ([gap] if gap else _trailing(metrics))


def _trend(values: list[float], best_epoch: int | None, schedule: str | None, images: int | None = None,
           losses: Sequence[float] = ()) -> str:  # fmt: skip
    epochs = len(values)
    if epochs < 2:
        return "One epoch only: there is no trend to tell whether training converged."
    gain = values[-1] - values[-2]
    best = epochs - 1 if best_epoch is None else best_epoch
    if best == epochs - 1 and gain >= STILL_RISING:
        rise = (f"the best epoch is the last ({epochs} of {epochs}) and validation accuracy still rose by "
                f"{_points(_shown(values[-1]) - _shown(values[-2]))} in it ({values[-2]:.1%} to {values[-1]:.1%}; the "
                f"threshold is {_points(STILL_RISING)})")  # fmt: skip
        retrain = f"train again with a larger `trainer.max_epochs`{_annealed(schedule)}"
        noise = None if images is None else _noise(values[-1], images)
        if noise is not None and gain <= noise:
            return (f"**Not shown converged:** {rise}, within the 95% noise of two independent accuracies on "
                    f"{images:,} validation images (±{_points(noise)}): the model may still be learning"
                    f"{_loss_fell(losses)}, or the rise may be noise (a paired test needs each epoch's per-image "
                    f"predictions, which the run does not store). Whether more epochs help is not measured here: "
                    f"{retrain}.")  # fmt: skip
        return (f"**Not converged:** {rise}: training stopped while the model was still learning{_loss_fell(losses)}. "
                f"Whether more epochs help is not measured here: {retrain}.")  # fmt: skip
    if best == epochs - 1:
        return (f"Validation accuracy is flat at the end: the best epoch is the last ({epochs} of {epochs}), "
                f"{_points(gain, sign=True)} over it ({values[-2]:.1%} to {values[-1]:.1%}; under "
                f"{_points(STILL_RISING)}){_still_fell(losses)}{_flattened(schedule)}.")  # fmt: skip
    if values[best] - values[-1] < STILL_RISING:
        return (f"Validation accuracy is flat at the end: the last epoch ({values[-1]:.1%}) is within "
                f"{_points(STILL_RISING)} of the best, epoch {best + 1} of {epochs} ({values[best]:.1%}), the "
                f"checkpoint evaluated{_still_fell(losses)}{_flattened(schedule)}.")  # fmt: skip
    return (f"Validation accuracy peaked at epoch {best + 1} of {epochs} ({values[best]:.1%}) and ended at "
            f"{values[-1]:.1%} ({_points(values[-1] - values[best], sign=True)}): the best checkpoint, not the last, "
            "is the one evaluated.")  # fmt: skip


def _loss_fell(losses: Sequence[float]) -> str:
    """`` (validation loss fell over it too, 1.219 to 1.186)``: a continuous sign of learning beside a rise in
    accuracy too small to tell from noise (FER2013, 4 epochs; a grader read it in the curves); nothing otherwise."""
    fall = _last_fall(losses)
    return f" (validation loss fell over it too, {fall})" if fall else ""


def _still_fell(losses: Sequence[float]) -> str:
    """``; but validation loss still fell over the last epoch (1.204 to 1.177), so a flat accuracy does not show that
    learning had stopped``: FER2013, 4 epochs, read as converged from two accuracies 0.1 points apart while its loss
    fell (a grader); nothing where the loss did not fall."""
    fall = _last_fall(losses)
    return (f"; but validation loss still fell over the last epoch ({fall}), so a flat accuracy does not show that "
            "learning had stopped") if fall else ""  # fmt: skip


def _last_fall(losses: Sequence[float]) -> str:
    """``1.204 to 1.177`` where the validation loss fell over the last epoch, else ""."""
    return f"{losses[-2]:.3f} to {losses[-1]:.3f}" if len(losses) >= 2 and losses[-1] < losses[-2] else ""


def _val_images(metrics: Mapping[str, Any]) -> int | None:
    """The validation images ``metrics.json`` records (``data.sizes.val``), None where it records none."""
    images = ((metrics.get("data") or {}).get("sizes") or {}).get("val")
    return images if isinstance(images, int) and not isinstance(images, bool) and images > 0 else None


def _noise(accuracy: float, images: int) -> float:
    """The 95% half-width of the difference of two independent accuracies near ``accuracy`` on ``images`` images:
    an upper bound on the noise of two epochs' accuracies on the same images (their errors overlap), which a paired
    test would narrow (FER2013, 4 epochs: a 0.8-point rise on 3,589 images against ±2.3 points; a grader found
    "still learning" untested)."""
    return 1.96 * math.sqrt(2 * accuracy * (1 - accuracy) / images)


#: Schedules that stretch their decay over the epochs given (torch.optim.lr_scheduler class names).
ANNEALING = frozenset({"OneCycleLR", "CosineAnnealingLR", "LinearLR", "PolynomialLR"})


def _annealed(schedule: str | None) -> str:
    """What a schedule that anneals over the epochs given does to a last epoch's rise, for such a schedule."""
    if schedule not in ANNEALING:
        return ""
    return (f" (this run's `{schedule}` brings the learning rate down over the epochs given, so part of the last "
            "epoch's rise is that annealing, which a longer run reaches later)")  # fmt: skip


def _flattened(schedule: str | None) -> str:
    """What a schedule that anneals over the epochs given does to a flat end, for such a schedule (grader review:
    demo_shapes' one-cycle rate was near zero in its last epoch)."""
    if schedule not in ANNEALING:
        return ""
    return (f"; this run's `{schedule}` brings the learning rate down over the epochs given, which flattens the end "
            "of any curve, so a flat end does not show that more epochs would teach the model nothing")  # fmt: skip


def _trailing(metrics: Mapping[str, Any]) -> list[str]:
    train, val = (metrics.get("train") or {}).get("acc"), (metrics.get("val") or {}).get("acc")
    if train is None or val is None or val - train <= TRAILING_GAP:
        return []
    return [f"Training accuracy {train:.1%} trails validation accuracy {val:.1%} by {_points(val - train)} (more than "
            f"{_points(TRAILING_GAP)}): it is the running mean over the last epoch's augmented batches with dropout "
            "on, both of which lower it, so the gap is no evidence of underfitting; the trend above is the "
            "better guide."]  # fmt: skip


def _correct(accuracy: float, images: int) -> str:
    """``"1,862 right"``: the count behind an accuracy, so that two equal accuracies read as counts, not a copy."""
    return f"{round(accuracy * images):,} right"


def _fit_gap(metrics: Mapping[str, Any], stated: bool = False) -> str | None:
    """Overfitting, or its absence, from the best checkpoint's clean training accuracy against its
    validation accuracy; None for a run that did not record them. ``stated``: the underfitting line before it gave
    the clean accuracy with its interval and images, so this one points back to them instead of saying it all again
    (FER2013: the same 26-word clause in two lines running)."""
    clean, val = metrics.get("train_clean") or {}, metrics.get("val") or {}
    sizes = (metrics.get("data") or {}).get("sizes") or {}
    val_images = sizes.get("val")
    if clean.get("acc") is None or val.get("acc") is None or not clean.get("images") or not val_images:
        return None
    train_interval = accuracy_bounds(clean["acc"], clean["images"])
    val_interval = accuracy_bounds(val["acc"], val_images)
    gap = clean["acc"] - val["acc"]
    train_part = (f"{clean['acc']:.1%} {_interval(train_interval)} ({_correct(clean['acc'], clean['images'])}) of "
                  f"{_drawn(clean['images'], metrics)} training images, seen as validation sees them (un-augmented, "
                  "eval mode)")  # fmt: skip
    if stated:
        train_part = f"{clean['acc']:.1%} ({_correct(clean['acc'], clean['images'])}) of those training images"
    numbers = (f"the best checkpoint classifies {train_part}, and {val['acc']:.1%} {_interval(val_interval)} "
               f"({_correct(val['acc'], val_images)}) of the {val_images:,} validation images: "
               f"{_points(gap, sign=True)}")  # fmt: skip
    rule = (f"overfitting is called when training accuracy exceeds validation accuracy by more than "
            f"{_points(OVERFIT_GAP)} and their 95% intervals do not overlap")  # fmt: skip
    if gap > OVERFIT_GAP and train_interval[0] > val_interval[1]:
        return (f"**Overfits:** {numbers} ({rule}): it fits the training images better than it generalizes; more "
                "data, augmentation or regularization would be the next step, not more epochs.")  # fmt: skip
    return f"No sign of overfitting: {numbers} ({rule})."


def _underfit(metrics: Mapping[str, Any], losses: Sequence[float] = (), schedule: str | None = None) -> str | None:
    """Underfitting against the dataset's published reference (:mod:`convlens.report.references`): the best
    checkpoint's clean training accuracy, interval and all, more than :data:`UNDERFIT_GAP` under the reference's
    test accuracy; None where it is not, or where there is no reference or no clean accuracy. Where the validation
    loss still fell over the last epoch, more epochs are named first (FER2013 at 4 epochs: a grader read "this run
    does not tell which" beside a loss still falling)."""
    clean = metrics.get("train_clean") or {}
    reference = REFERENCES.get((metrics.get("data") or {}).get("name"))
    if reference is None or clean.get("acc") is None or not clean.get("images"):
        return None
    accuracy, source = reference.accuracy, reference.model
    bounds = accuracy_bounds(clean["acc"], clean["images"])
    if bounds[1] >= accuracy - UNDERFIT_GAP:
        return None
    below, fall, untold = _points(accuracy - clean["acc"]), _last_fall(losses), "; this run does not tell which"
    return (f"**Underfits:** the best checkpoint classifies only {clean['acc']:.1%} {_interval(bounds)} of "
            f"{_drawn(clean['images'], metrics)} training images (un-augmented, eval mode), {below} "
            f"under the {accuracy:.0%} that {source} reaches on the *test* images (underfitting is called when the "
            f"interval's top is more than {_points(UNDERFIT_GAP)} under it). It fits the images it was trained on "
            "worse than a published model classifies images it never saw: too few epochs, too little capacity or "
            f"too strong a regularisation (weight decay, dropout, augmentation{'' if fall else untold}), so its "
            f"maps explain a weaker classifier than a well-trained one.{_first_remedy(fall, schedule)}")  # fmt: skip


def _first_remedy(fall: str, schedule: str | None) -> str:
    """More epochs as the first cause of underfitting to try, where the validation loss still fell over the last one
    (``fall``, :func:`_last_fall`, said in the trend's sentence above), else nothing; under an annealing schedule,
    a new run with them (resuming continues the schedule of the epochs given, which has ended)."""
    if not fall:
        return ""
    how = (f"train again from the start with a larger `trainer.max_epochs` (this run's `{schedule}` spread its decay "
           "over the epochs given, so resuming would go on at the end of the schedule)" if schedule in ANNEALING
           else "train longer (`trainer.max_epochs`)")  # fmt: skip
    return (
        f" With the validation loss still falling at the end (above), more epochs are the first to try: {how}; "
        "the run cannot tell whether they are enough."
    )


def _drawn(images: int, metrics: Mapping[str, Any]) -> str:
    """``a random 3,589 of the 28,709`` (or ``all of the 5,000``): the training images the clean accuracy is of."""
    train = ((metrics.get("data") or {}).get("sizes") or {}).get("train", 0)
    return f"{'all' if images == train else f'a random {images:,}'} of the {train:,}"


def _interval(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:.1%}-{bounds[1]:.1%}]"


def _shown(accuracy: float) -> float:
    """``accuracy`` as the report prints it (to 0.1%), so that a difference given beside two printed accuracies is
    their difference (35.9% to 47.6% rose by 11.7 points, not by the unrounded 11.6)."""
    return round(accuracy, 3)


def _points(fraction: float, sign: bool = False) -> str:
    """A difference of two accuracies in percentage points (not a relative change in percent)."""
    return f"{100 * fraction:{'+' if sign else ''}.1f} percentage points"
