"""The report section "How far can we trust these maps?": every attribution method on the same images,
then the evaluation stage's scores (:mod:`convlens.report.trust_scores`, folded: the verdicts are the
Findings'), and the status line each method's own section carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convlens import registry
from convlens.report.assets import (
    CASCADE,
    COMPARISON,
    EVALUATED_COMPARISON,
    cascade_file,
    shown_comparison,
)
from convlens.report.findings import input_names, parts_reading
from convlens.report.gallery import split_images
from convlens.report.markdown import code, text
from convlens.report.run_data import RunData
from convlens.report.trust_scores import TrustSection, scores_section
from convlens.rundir import DEFAULT_SPLIT, EVALUATION_JSON
from convlens.untrusted import UntrustedInputError


def _layers_shown(run: RunData) -> str:
    """The evaluated comparison's caption: its images, and the layer each method with several layers is shown at
    (entries that are not what the evaluate stage writes are left out: the file is input)."""
    chosen = []
    for record in (run.evaluation.get("methods") or {}).values():
        best = record.get("best_layer") if isinstance(record, dict) else None
        if isinstance(best, dict) and isinstance(best.get("layer"), str):
            chosen.append(f"{text(str(record.get('title')))} at {code(best['layer'])}")
    images = (run.evaluation.get("comparison") or {}).get("images")
    shown = len(images) if isinstance(images, list) else 0
    classes = len(run.class_names)
    which = "each class" if shown == classes else f"{shown} of the {classes} classes"
    caption = (f"The first correctly classified image of {which} in the evaluation's random sample (so explained "
               f"for its true class){_classes_left_out(images, run.class_names)}. Each map is drawn as the checks "
               "score it (scaled as the figure's footer "
               "says): the evidence for the class, i.e. the positive part of a signed map (gradient x input, "
               "Integrated Gradients, LIME); the evidence against it, blue in those methods' own sections, is not "
               "shown here.")  # fmt: skip
    if chosen:
        masks = run.evaluation.get("masks")
        ties = ("then pointing game, then the maps less alike across images, then the deeper layer" if masks
                else "then the maps less alike across images, then the deeper layer")  # fmt: skip
        failed = ("fewest shown to fail (worse than a model-free map and a repeated pattern count)" if masks
                  else "fewest shown to fail (worse than a model-free map counts)")  # fmt: skip
        caption += (f" Shown at the layer the checks support best ({', '.join(chosen)}: most families supported, "
                    f"then fewest not supported, then {failed}, {ties}).")  # fmt: skip
    return caption


def _classes_left_out(images: Any, class_names: list[str]) -> str:
    """``; none of Disgust, Fear`` for the classes the comparison's ``images`` ([index, class] pairs, as the evaluate
    stage writes them) leave out, named up to :data:`NAMED_LEFT_OUT` of them (FER2013's caption said '5 of the 7
    classes' without naming Fear, a class the confusions are about); nothing when every class is shown or the entry
    is not what the stage writes."""
    pairs = images if isinstance(images, list) else []
    if not pairs or not all(isinstance(pair, list) and len(pair) == 2 and type(pair[1]) is int for pair in pairs):
        return ""
    shown = {pair[1] for pair in pairs}
    missing = [text(name) for label, name in enumerate(class_names) if label not in shown]
    if not missing or len(missing) > NAMED_LEFT_OUT:
        return ""
    return f"; none of {', '.join(missing)}: no sample image of theirs is explained for its own class"


#: The comparison's caption names the classes it leaves out up to this many (a 100-class model leaves out 90).
NAMED_LEFT_OUT = 5


def trust(run: RunData, findings: str = "the Findings") -> TrustSection:
    """The section's body and the per-method status lines, from the run's comparison figure and evaluation;
    ``findings`` links to the Findings section, where the verdicts are said."""
    parts: list[str] = []
    shown = shown_comparison(run)
    if shown is not None and shown[1] == EVALUATED_COMPARISON:
        parts += [f"![Every evaluated method on the same sample images]({EVALUATED_COMPARISON})", _layers_shown(run)]
    elif shown is not None:
        images = split_images((run.manifest or {}).get("split", DEFAULT_SPLIT))
        parts.append(f"![Every attribution method on the same {images}]({COMPARISON})")
    else:
        parts.append(f"> **Missing:** no comparison figure in this run; `make visualize RUN={run.label}` draws it.")
    gone = run.evaluation is not None and run.manifest is None
    if gone:
        parts.append(
            "> **Gone:** the maps these scores describe were deleted (no visualizations/manifest.json); "
            f"`make visualize RUN={run.label}` draws them again, then `make evaluate RUN={run.label}` scores them."
        )
    stale = run.evaluation_stale
    if stale and not gone:
        parts.append(
            f"> **Stale:** {input_names(stale)} changed since the evaluation read it (its "
            "sha256 differs), so the scores below describe earlier maps or an earlier model; "
            f"`make evaluate RUN={run.label}` scores the current ones."
        )
    figure = CASCADE if cascade_file(run) is not None else None
    try:
        scores = scores_section(run.evaluation, figure, run.label, findings)
        readings = _readings(run.evaluation, list(scores.status), run.class_names)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise UntrustedInputError(
            f"{run.label}/{EVALUATION_JSON} is not what the evaluate stage writes ({type(error).__name__}: "
            f"{error}); rerun `make evaluate RUN={run.label}`"
        ) from error
    # about earlier maps: not pinned on the current ones
    status = {} if stale else {name: [*lines, *readings[name]] for name, lines in scores.status.items()}
    return TrustSection("\n\n".join([*parts, scores.body]), status)


def _readings(evaluation: dict[str, Any] | None, names: list[str], class_names: Sequence[str]) -> dict[str, list[str]]:
    """Each method's parts reading (:func:`parts_reading`), the rule stated in the first one in the report's order
    (its sections' methods in turn; a method no section shows, last) and pointed to from the others."""
    shown = [name for section in registry.SECTIONS for name in registry.section_methods(section)]
    readings: dict[str, list[str]] = {}
    first: str | None = None
    for name in sorted(names, key=lambda name: shown.index(name) if name in shown else len(shown)):
        readings[name] = parts_reading(evaluation, name, class_names, first)
        if readings[name] and first is None:
            first = text(registry.title(name))
    return readings
