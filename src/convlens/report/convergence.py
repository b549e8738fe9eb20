"""Has training converged, and does the model underfit? Sentences computed from the per-epoch curves and
the best checkpoint's numbers, each with its threshold, for the learning-progress section.

Validation accuracy that rose by at least :data:`STILL_RISING` over the last epoch, with the best epoch
the last, means the run stopped while it was still learning; running training accuracy (on augmented
images, with dropout) more than :data:`UNDERFIT_GAP` below the best validation accuracy means the model
does not even fit its training data as well as it generalises: it underfits (a larger model, more
epochs or weaker augmentation would help).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Validation accuracy gained over the last epoch (as a fraction) above which training is still rising.
STILL_RISING = 0.005
#: Training accuracy this far below validation accuracy (as a fraction) is called underfitting.
UNDERFIT_GAP = 0.01


def convergence(val_accuracy: Sequence[float | None], best_epoch: int | None, metrics: Mapping[str, Any]) -> list[str]:
    """Sentences on the trend (``val_accuracy`` per epoch, ``best_epoch`` 0-based) and on underfitting."""
    values = [value for value in val_accuracy if value is not None]
    lines = [_trend(values, best_epoch)] if values else []
    return lines + _underfit(metrics)


def _trend(values: list[float], best_epoch: int | None) -> str:
    epochs = len(values)
    if epochs < 2:
        return "One epoch only: there is no trend to tell whether training converged."
    gain = values[-1] - values[-2]
    best = epochs - 1 if best_epoch is None else best_epoch
    if best == epochs - 1 and gain >= STILL_RISING:
        return (f"**Not converged:** the best epoch is the last ({epochs} of {epochs}) and validation accuracy "
                f"still rose by {_points(gain)} in it ({values[-2]:.1%} to {values[-1]:.1%}; the threshold is "
                f"{_points(STILL_RISING)}): more epochs would likely help.")  # fmt: skip
    if best == epochs - 1:
        return (f"Validation accuracy is flat at the end: the best epoch is the last ({epochs} of {epochs}), "
                f"{_points(gain, sign=True)} over it ({values[-2]:.1%} to {values[-1]:.1%}; under "
                f"{_points(STILL_RISING)}).")  # fmt: skip
    return (f"Validation accuracy peaked at epoch {best + 1} of {epochs} ({values[best]:.1%}) and ended at "
            f"{values[-1]:.1%} ({_points(values[-1] - values[best], sign=True)}): the best checkpoint, not the last, "
            "is the one evaluated.")  # fmt: skip


def _underfit(metrics: Mapping[str, Any]) -> list[str]:
    train, val = (metrics.get("train") or {}).get("acc"), (metrics.get("val") or {}).get("acc")
    if train is None or val is None or val - train <= UNDERFIT_GAP:
        return []
    return [f"**Underfits:** training accuracy {train:.1%} (last epoch's running average, augmented images) is "
            f"{_points(val - train)} below validation accuracy {val:.1%} (more than {_points(UNDERFIT_GAP)}): more "
            "capacity, "
            "epochs or weaker augmentation would help (a model still improving also trails: read with the "
            "trend)."]  # fmt: skip


def _points(fraction: float, sign: bool = False) -> str:
    """A difference of two accuracies in percentage points (not a relative change in percent)."""
    return f"{100 * fraction:{'+' if sign else ''}.1f} percentage points"
