"""The scores of the report section "How far can we trust these maps?", from the run's
``evaluation/evaluation.json`` (:mod:`convlens.report.trust` adds the comparison figure around them).

It holds one table, folded (method x layer: every score next to its random baseline with the interval of the
paired difference, marked where the adjusted test says so (:mod:`convlens.report.trust_verdicts`), and
the verdict of each family of metrics), the randomization-cascade figure, and sentences generated from
the numbers, one per map derived from its family verdicts; :attr:`TrustSection.status` holds, per method, the
one line its own section carries: at which layers the Findings trust its maps. Every string
taken from the file is escaped; the report recomputes nothing. The table's score columns, and what a
worse-than-random score means, are the registered families' metrics (:mod:`convlens.evaluation_registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convlens.evaluation_registry import FAMILIES, REFERENCES, Metric, scored_metrics
from convlens.report.format import is_number, mean, p_value
from convlens.report.markdown import code, folded, prose, table, text
from convlens.report.trust_verdicts import (
    MARKS,
    MIN_IMAGES,
    TRUST_STATUSES,
    cascade_images,
    costly_images,
    grouped,
    images_row,
    model_free_numbers,
    overall,
    score_cell,
    shared_sentence,
    shared_verdicts,
    short_of_model_free,
    trust_status,
    verdict_cells,
)

CASCADE_NOTE = (
    "One method per row: its map of the sample image named above the input, from the trained model, then with "
    "each further stage re-initialised from the head down; the curves below average the similarity over the "
    "family's images. A map that keeps its look without the weights shows the image, not the model."
)
#: The issue's bar: every method should beat random maps on these, or the report says why not.
HEADLINE = ("pointing_game", "deletion_auc")


@dataclass(frozen=True)
class TrustSection:
    """The section's markdown ``body`` and, per method name, the status line of the method's own section."""

    body: str
    status: dict[str, list[str]] = field(default_factory=dict)


def scores_section(evaluation: dict[str, Any] | None, figure: str | None = None, run_label: str = "",
                   findings: str = "") -> TrustSection:  # fmt: skip
    """The section's scores for ``evaluation`` (None: not evaluated yet); ``figure`` is the report's link to the
    copied ``cascade.png`` (None: no figure). The verdicts are the Findings' (``findings``: its heading's
    link); the full table and the sentences behind them are folded, to be opened by who checks them."""
    if evaluation is None:
        return TrustSection(f"The maps of this run are not evaluated yet: run `make evaluate RUN={run_label}`.")
    rows = [row for name, method in evaluation["methods"].items() for row in _rows(name, method)]
    parts = [f"The verdicts are in {findings}; every score behind them is folded below.", _glossary(evaluation)]
    if figure:
        parts += ["### Randomization cascade", f"![Cascading model-parameter randomization]({figure})", CASCADE_NOTE]
    detail = [_intro(evaluation), _table(evaluation, rows)]
    sentences = _observations(evaluation, rows)
    if sentences:
        detail += ["**What the numbers say**", "\n".join(f"- {sentence}" for sentence in sentences)]
    detail += _left_out(evaluation)
    parts.append(folded("Every score: n, interval, test and verdict per method and layer", "\n\n".join(detail)))
    lines = {name: _status(name, evaluation, findings) for name in evaluation["methods"]}
    return TrustSection("\n\n".join(parts), lines)


@dataclass(frozen=True)
class Row:
    """One method-layer: its method's name and (escaped) title, the layer ('' for a single map), its records."""

    method: str
    title: str
    layer: str
    record: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.title} at {code(self.layer)}" if self.layer else self.title


def _rows(name: str, method: dict[str, Any]) -> list[Row]:
    return [Row(name, text(method["title"]), layer, record) for layer, record in method["layers"].items()]


def _costly(sample: dict[str, Any]) -> str:
    """The clause naming the costly methods' smaller sample, where they had one."""
    fewer = costly_images(sample)
    return f"; costly methods on the first {fewer}" if fewer is not None else ""


#: The cascade's columns, which are not registered metrics (the family shows them its own way): label, better,
#: what it measures, what it is judged against.
CASCADE_COLUMNS = (
    ("Spearman head → all", "lower",
     "rank correlation of the map with the trained model's map after the head alone, then every stage, is "
     "re-initialised: a map that shows what the model learnt loses its resemblance",
     "the threshold (similar above it), then two randomised models' and the edge map's similarity"),
    ("SSIM head → all", "lower", "the same comparison by structural similarity", "shown, not tested"),
)  # fmt: skip


def _glossary(evaluation: dict[str, Any] | None = None) -> str:
    """What each column of the table measures, which direction is better and what it is judged against (the
    reference its cells record), from the family registry, and what "the object" is on this data (the parts
    inside its ground-truth masks), folded."""
    judged = _references(evaluation or {})
    beyond = {family for family, spec in FAMILIES.items() if spec.beyond_model_free}
    also = (
        ", then at least one metric of the family beyond the edge map and the centred blob, and worse than "
        "neither on any"
    )
    settings = (evaluation or {}).get("settings") or {}
    rows = [(metric.label, text(_filled(metric.means, settings.get(family))), metric.better,
             judged[metric.key] + also * (family in beyond) if metric.key in judged else "-")
            for family, metric in scored_metrics() if metric.means]  # fmt: skip
    rows += [(label, text(means), better, text(against)) for label, better, means, against in CASCADE_COLUMNS]
    evidence = ((evaluation or {}).get("regions") or {}).get("evidence") or []
    object_is = (f"\n\nThe object (the class evidence, the data's ground-truth mask) is here: "
                 f"{', '.join(text(part) for part in evidence)}." if evidence else "")  # fmt: skip
    header = ("score", "what it measures", "better", "judged against")
    model_free = ("\n\nThe maps that ignore the model, scored as every method is: the edge map, "
                  f"{MODEL_FREE_MEANING['edges'][0]}, and the centred blob, {MODEL_FREE_MEANING['centre'][0]}; "
                  "a method no better than them shows the image's edges or a guess at its centre, not what the model "
                  "uses.")  # fmt: skip
    # folded: a reference the Findings point to, 374 words of a visible report far over its budget (FER2013)
    return folded("What each score measures", table(header, rows) + model_free + object_is)


def _filled(means: str, settings: dict[str, Any] | None) -> str:
    """A metric's glossary line with its ``{name}`` fields from the family's recorded ``settings`` (FER2013's
    "small random changes of the input" gave no size, a grader); the fields named generically where the evaluation
    records none."""
    fields = {"samples": "several", "radius": "a small bound"} | (settings or {})
    try:
        return means.format(**fields)
    except (KeyError, IndexError, ValueError):  # a setting the line names is missing or malformed: the line as written
        return means


def _references(evaluation: dict[str, Any]) -> dict[str, str]:
    """Per metric key, the reference its cells are judged against (:data:`REFERENCES`), as the first cell of
    the evaluation that records one says."""
    found: dict[str, str] = {}
    for method in (evaluation.get("methods") or {}).values():
        for record in method["layers"].values():
            for family in FAMILIES:
                for key, cell in (record.get(family) or {}).items():
                    if isinstance(cell, dict) and cell.get("reference") in REFERENCES:
                        found.setdefault(key, REFERENCES[cell["reference"]])
    return found


def _intro(evaluation: dict[str, Any]) -> str:
    faith, rand, robust = (evaluation["settings"][key] for key in ("faithfulness", "randomization", "robustness"))
    sample = evaluation["sample"]
    masks = "against the ground-truth masks of the synthetic data, " if evaluation["masks"] else ""
    return (
        f"Each method is scored on its own maps of {sample['images']} test images drawn at random, stratified by "
        f"class, apart from the figures' images (seed {sample['seed']}{_costly(sample)}), each explained for "
        f"{sample['explained']}, {masks}by how much the class "
        f"probability depends on the pixels it ranks first (deletion, insertion over {_grid(faith)}, ROAD), by "
        "how much it changes when the model's stages are re-initialised from the head down (Adebayo et al. 2018; "
        f"{rand['images']} images) and by how far it moves under input noise of ±{robust['radius']:g} "
        f"({robust['samples']} draws, {robust['images']} images). Each cell gives the mean score, in parentheses "
        "the same score of its reference on the same images (uniform random maps; for max-sensitivity the edge "
        "detector's map), in brackets the 95% bootstrap interval of the paired difference from it (positive: "
        "better); ✓ marks a map better than its reference, ✗ one worse, where the permutation test survives the "
        f"Benjamini-Hochberg adjustment over the {_tests(evaluation)} tests of this table (q = 0.05); unmarked, the "
        "two cannot be told apart on these images; (n < 8): too few images to test. The interval (a bootstrap of "
        "the paired differences) and the mark (a sign-flip permutation test, then adjusted for the table's many "
        "tests) are separate computations and the interval is not adjusted, so one that excludes 0 can stay "
        "unmarked (each test's raw and adjusted p are in `evaluation.json`). The row n gives the images per "
        "column; '(flat on x%)' after a layer, the share of images on which its map is flat (zero or constant). "
        "The randomization columns give the Spearman "
        "correlation and SSIM of the maps' magnitudes to the "
        "trained model's after re-initialising the head and after all stages, in parentheses the same similarity "
        "between the maps of two independently randomised models and the edge map's similarity to the trained map; "
        f"a map is sensitive to the weights when its Spearman after all stages is tested below "
        f"{rand['similar_above']:g} and ends no more than {rand['margin']:g} above the larger of those two, and its "
        f"Spearman after the head alone is tested below {rand['similar_above']:g} too (✓: sensitive; ✗: shown "
        "not to be, or more alike than the references allow; ?: neither shown, which is no support). "
        "Each family of metrics gives a verdict: supported when "
        "the map beats its reference on at least one of its metrics and is worse on none (faithfulness: and among "
        "those metrics beats the edge map on one and the centred blob on one, the same or another); robustness "
        "counts only "
        "for a map shown to depend on the weights. A map is trusted, here and in the Findings, when faithfulness "
        "and randomization support it and localisation does not refute it; robustness is shown, not required "
        "(the Findings read class means over n images, which dilute a map's per-image instability: an assumption, "
        "not tested here). `docs/trust.md` defines every metric and test."
    )


def _grid(faith: dict[str, Any]) -> str:
    """The deletion grid as the intro states it: its points, the curves' ends included, and the tiles."""
    tiles = f", {faith['patch']:g} of the side per tile" if faith.get("patch") else ", pixel by pixel"
    return f"{len(faith['shares']) + 2} shares of the pixels{tiles}"


def _tests(evaluation: dict[str, Any]) -> int:
    return evaluation["multiple_testing"]["tests"]


#: Cells that hold no result: a column of only these (localisation without masks) is left out of the table.
UNTESTED = ("-", "", "not tested")


def _table(evaluation: dict[str, Any], rows: list[Row]) -> str:
    header = ["method", "layer", *(metric.label for _, metric in scored_metrics()),
              "Spearman head → all", "SSIM head → all", *(spec.title for spec in FAMILIES.values())]  # fmt: skip
    lines = [[row.title, _layer_cell(row), *_score_cells(row.record), *_cascade_cells(row.record),
              *verdict_cells(row.record)] for row in rows]  # fmt: skip
    records = [row.record for row in rows]
    padding = [""] * (len(header) - 3 - len(scored_metrics()))
    lines.insert(0, ["n (images)", "", *images_row(records), cascade_images(records), *padding])
    chance = (evaluation["baselines"].get("localisation") or {}).get("chance")
    if chance is not None:
        cells = ["chance (mask area)", "", *([f"{chance:.2f}"] * 3), *([""] * (len(header) - 5))]
        lines.insert(1, cells)
    kept = [index for index in range(len(header)) if index < 2 or any(line[index] not in UNTESTED for line in lines)]
    left_out = [header[index] for index in range(len(header)) if index not in kept]
    note = f"\n\nLeft out of the table, not tested for any method: {', '.join(left_out)}." if left_out else ""
    return table([header[index] for index in kept], [[line[index] for index in kept] for line in lines]) + note


def _layer_cell(row: Row) -> str:
    """The layer, with the share of images on which its map is flat (zero or constant) where there are any:
    a flat map has no location, and its scores say nothing of where the model looks."""
    layer = code(row.layer) if row.layer else "-"
    flat = row.record.get("flat") or 0
    return f"{layer} (flat on {flat:.0%})" if flat > 0 else layer


def _score_cells(record: dict[str, Any]) -> list[str]:
    return [score_cell(record.get(family, {}).get(metric.key)) for family, metric in scored_metrics()]


#: The Spearman column's mark per cascade verdict: sensitive passes, insensitive fails (both tested), and an
#: undecided cascade (its tests mark neither side) gets neither, so that ✗ keeps meaning "shown worse".
CASCADE_MARKS = {"sensitive": MARKS["above"], "insensitive": MARKS["below"], "undecided": " ?"}


def _cascade_cells(record: dict[str, Any]) -> list[str]:
    cascade = record.get("randomization")
    if not cascade:
        return ["-", "-"]
    mark = CASCADE_MARKS.get(cascade["verdict"], "")
    return [
        f"{mean(cascade['top'][name])} → {mean(cascade['full'][name])} ({mean(cascade['baseline'][name])}; "
        f"edges {mean(cascade['edges'][name])})" + (mark if name == "spearman" else "")
        for name in ("spearman", "ssim")
    ]


def _observations(evaluation: dict[str, Any], rows: list[Row]) -> list[str]:
    """What the table means: one sentence per map from its family verdicts; for the headline metrics
    (pointing game, deletion) how many maps beat random maps and why the others do not; for every other
    metric the maps worse than random, and those that beat random maps but not an edge detector or a centred
    blob; the cascade."""
    records = [row.record for row in rows]
    shared = shared_verdicts(records)
    sentences = shared_sentence(shared, records) + grouped(
        [(row.label, overall(row.label, row.record, shared)) for row in rows]
    )
    for family, metric in scored_metrics():
        scored = [row for row in rows if row.record.get(family, {}).get(metric.key, {}).get("value") is not None]
        if scored and metric.key in HEADLINE:
            beat = sum(_score(row, family, metric.key)["verdict"] == "above" for row in scored)
            heading = metric.label[0].upper() + metric.label[1:]
            sentences.append(f"{heading}: {beat} of {len(scored)} maps score better than random maps.")
        sentences += _misses(evaluation, scored, family, metric) + _no_better_than_model_free(scored, family, metric)
        sentences += _not_beyond_random(scored, family, metric)
    return sentences + _alike(rows) + _cascade(rows, evaluation["settings"]["randomization"])


def _alike(rows: list[Row]) -> list[str]:
    """One sentence on the maps that the evaluation found to repeat a pattern (``alike_across_images.repeats``,
    decided only against the objects' masks): each map's Spearman with the mean of the other images' maps,
    the paired difference's whole 95% interval more alike than the masks' by over the recorded ``margin``
    (its permutation p-value is given, unadjusted: a description of the maps, not a cell of the table). Such
    a method draws a pattern of its own, the same wherever the image's evidence lies (a layer's grid, a fixed
    centre)."""
    cells = [(row, row.record["alike_across_images"]) for row in rows
             if (row.record.get("alike_across_images") or {}).get("repeats")]  # fmt: skip
    if not cells:
        return []
    found = []
    for row, cell in cells:
        test = cell["against"][cell["reference"]]
        found.append(f"{row.label} {cell['value']:.2f} (the objects' own masks {test['mean']:.2f}; "
                     f"{-test['difference']:+.2f} [{-test['high']:+.2f}, {-test['low']:+.2f}], "
                     f"p {p_value(test['p'])}, n = {test['n']})")  # fmt: skip
    margin = cells[0][1]["margin"]
    return [f"Maps that look alike whatever the image: each map's Spearman correlation with the mean of the other "
            f"images' maps, against the same for the objects' masks, with the paired difference's 95% interval (all "
            f"of it over {margin:g} more alike) and permutation p (not adjusted): {'; '.join(found)}. Such maps "
            "repeat a pattern of their own (a layer's grid, a fixed centre) beyond what the objects' positions "
            "repeat across the images, so a map of one image shows that pattern more than where that image's "
            "evidence lies."]  # fmt: skip


def _misses(evaluation: dict[str, Any], rows: list[Row], family: str, metric: Metric) -> list[str]:
    """One sentence per reason: the maps that do not beat random maps on ``metric`` (headline metrics)
    or do worse (the others), with the reason the numbers give."""
    groups: dict[str, list[str]] = {}
    worse_all: dict[str, bool] = {}
    for row in rows:
        score = _score(row, family, metric.key)
        if score["verdict"] == "below" or (score["verdict"] != "above" and metric.key in HEADLINE):
            worse = ", worse" if score["verdict"] == "below" else ""
            reason = _why(evaluation, row, score, metric.worse, metric.key)
            groups.setdefault(reason, []).append(
                f"{row.label} ({mean(score['value'])} vs {mean(score['baseline'])}{worse})"
            )
            worse_all[reason] = worse_all.get(reason, True) and bool(worse)
    if not groups:
        return []
    reference = _reference(rows, family, metric)
    return [f"On {metric.label}, {', '.join(items)} "
            f"{f'{_are(items)} worse than' if worse_all[reason] else f'{_do(items)} not beat'} {reference}: "
            f"{_each(reason, items)}." for reason, items in groups.items()]  # fmt: skip


def _not_beyond_random(rows: list[Row], family: str, metric: Metric) -> list[str]:
    """For a metric judged against another reference (max-sensitivity: the edge map), the maps worse than random
    maps, which the cells also test, and those not shown better, each with both means, the interval of the advantage
    and the adjusted p: on FER2013 the one trusted map moved under input noise as much as uniform random maps (0.70
    vs 0.72), and the table showed only the edge map's 0.17 (a grader)."""
    sides: dict[str, list[str]] = {"below": [], "level": []}
    for row in rows:
        score = _score(row, family, metric.key)
        mark = ((score.get("against") or {}).get("random") or {}).get("mark")
        numbers = model_free_numbers(score, "random")  # the same paired-test figures, against random maps
        if score.get("reference") != "random" and mark in sides and numbers:
            sides[mark].append(f"{row.label}{numbers}")
    said = {"below": "worse than random maps too", "level": "not shown better than random maps either"}
    return [f"On {metric.label}, {', '.join(found)} {_are(found)} {said[side]} (uniform noise, which ignores both "
            f"model and image): the table's reference is not the only bar {_misses_it(found)}."
            for side, found in sides.items() if found]  # fmt: skip


def _misses_it(subjects: list[str]) -> str:
    return "it misses" if len(subjects) == 1 else "they miss"


def _each(reason: str, subjects: list[str]) -> str:
    """A reason said of one map ("it moves more ...", "its peak lies ...") said of each of several ("each moves more
    ...": FER2013's max-sensitivity sentence named 14 maps and went on "it moves more")."""
    if len(subjects) == 1:
        return reason
    if reason.startswith("it "):
        return "each " + reason.removeprefix("it ")
    return "each map's " + reason.removeprefix("its ") if reason.startswith("its ") else reason


def _reference(rows: list[Row], family: str, metric: Metric) -> str:
    """What the metric's cells are judged against, as a sentence names it."""
    reference = _score(rows[0], family, metric.key)["reference"]
    return REFERENCES.get(reference, reference)


#: Each model-free map (:data:`~convlens.report.trust_verdicts.MODEL_FREE`) described, and what it shows.
MODEL_FREE_MEANING = {
    "edges": ("an edge detector (Sobel magnitude of the image)", "the image's edge map"),
    "centre": ("a centred Gaussian blob that ignores the image", "a guess at the image's centre"),
}
#: What matching (not shown better than) or beating (worse than) a model-free map means, given what it shows.
SHOWN_BY_MODEL_FREE = {
    "not shown better than": "nothing shown beyond what {} shows",
    "worse than": "{} shows it better",
}


def _no_better_than_model_free(rows: list[Row], family: str, metric: Metric) -> list[str]:
    """Per model-free map, the maps that beat random maps on ``metric`` but not it
    (:func:`~convlens.report.trust_verdicts.short_of_model_free`), each with both means, the paired difference's
    interval, the adjusted p-value and n (:func:`~convlens.report.trust_verdicts.model_free_numbers`)."""
    sentences = []
    for name, (what, shown) in MODEL_FREE_MEANING.items():
        groups: dict[str, list[str]] = {"worse than": [], "not shown better than": []}
        for row in rows:
            score = _score(row, family, metric.key)
            side = short_of_model_free(score, name)
            if side is not None:
                groups[side].append(f"{row.label}{model_free_numbers(score, name)}")
        sentences += [f"On {metric.label}, {', '.join(items)} {_beat(items)} random maps but {_are(items)} {side} "
                      f"{what}: {SHOWN_BY_MODEL_FREE[side].format(shown)}."
                      for side, items in groups.items() if items]  # fmt: skip
    return sentences


def _are(subjects: list[str]) -> str:
    return "is" if len(subjects) == 1 else "are"


def _beat(subjects: list[str]) -> str:
    return "beats" if len(subjects) == 1 else "beat"


def _do(subjects: list[str]) -> str:
    return "does" if len(subjects) == 1 else "do"


def _why(evaluation: dict[str, Any], row: Row, score: dict[str, Any], meaning: str, metric: str) -> str:
    """The most specific reason the numbers give for a score that does not beat random maps."""
    border = evaluation.get("border") or {}
    if row.record.get("flat", 0) >= 0.5:
        return (f"the map is flat on {row.record['flat']:.0%} of the images (the layer's output is too small at this "
                "input size to have a location)")  # fmt: skip
    if (row.record.get("peak_at_border") or 0) >= max(0.5, 2 * border.get("area", 1)):
        return (f"its peak lies within {border['pixels']} px of the image edge on {row.record['peak_at_border']:.0%} "
                f"of the images (a random peak: {border['area']:.0%}), away from the objects")  # fmt: skip
    if score["verdict"] == "level" and score["images"] < (evaluation.get("sample") or {}).get("images", 0):
        return (f"computed on the first {score['images']} of the {evaluation['sample']['images']} sampled images only "
                f"(a costly method), {_test(score)}")  # fmt: skip
    if metric == "deletion_auc" and score["verdict"] == "level" and (curve := _deletion_curve(evaluation)):
        return curve
    if score["verdict"] == "below":
        return meaning
    if score["verdict"] == "too few images":
        return f"{score['images']} images are too few to test (at least {MIN_IMAGES})"
    return f"on these {score['images']} images {_test(score)}"


def _test(score: dict[str, Any]) -> str:
    """A level cell's paired test against its reference, in numbers: why it is not marked."""
    test = score["against"][score["reference"]]
    if test.get("p_adjusted") is None:
        return "the difference cannot be tested"
    return (
        f"its paired difference from the reference, {test['difference']:+.2f} (better: positive) "
        f"[{test['low']:+.2f}, {test['high']:+.2f}], has permutation p = {test['p']:.3f}, "
        f"{test['p_adjusted']:.3f} after the Benjamini-Hochberg adjustment over the table: not below q = 0.05"
    )


def _deletion_curve(evaluation: dict[str, Any]) -> str | None:
    """Why deletion AUC hardly separates maps, when the random maps' curve says so."""
    curves = (evaluation["baselines"].get("faithfulness") or {}).get("curves")
    if not curves or None in curves["deletion"]:
        return None
    share, (start, first), floor = curves["shares"][1], curves["deletion"][:2], curves["deletion"][-1]
    if first <= start / 2:
        return (f"deleting even {share:.0%} of the pixels at random drops the class probability from {start:.2f} to "
                f"{first:.2f}, so scattered deletions alone take the images out of what the model knows")  # fmt: skip
    return (f"every curve, random ones too, settles near {floor:.2f} (the probability of an image with every pixel "
            "removed) within a few steps, which takes most of the area, and the differences over the first steps "
            "do not survive the adjusted test on these images")  # fmt: skip


def _cascade(rows: list[Row], settings: dict[str, Any]) -> list[str]:
    cascaded = [row for row in rows if row.record.get("randomization")]
    sensitive = [row.label for row in cascaded if row.record["randomization"]["verdict"] == "sensitive"]
    sentences = ([f"Randomization: the maps of {', '.join(sensitive)} lose their resemblance to the trained ones "
                 f"once every stage is re-initialised (Spearman tested below {settings['similar_above']:g}, ending no "
                 f"more than {settings['margin']:g} above what two randomised models' maps or an edge map share), and "
                 f"re-initialising the head alone already brings them below {settings['similar_above']:g} (tested): "
                 "they depend on what the model learned."]
                 if sensitive else [])  # fmt: skip
    unshown = [row for row in cascaded if row.record["randomization"]["verdict"] in ("insensitive", "undecided")]
    said = [row.label for row in unshown if _randomization_verdict(row)["verdict"] == "not supported"]
    if said:  # their lines above (overall) give each reason already (a grader counted it twice per method)
        sentences.append(f"Not shown to depend on the weights, each for the reason its line above gives: "
                         f"{', '.join(said)}.")  # fmt: skip
    sentences += [f"{row.label} is not shown to depend on the weights: {_randomization_verdict(row)['why']}."
                  for row in unshown if row.label not in said]  # fmt: skip
    return sentences + _flattened(cascaded)


def _randomization_verdict(row: Row) -> dict[str, Any]:
    return (row.record.get("verdicts") or {}).get("randomization") or {"verdict": "not tested", "why": "not evaluated"}


def _flattened(rows: list[Row]) -> list[str]:
    """One sentence on the maps the cascade turns flat on some images, with their counts after each step
    (``flattened``, absent from older evaluations): a flat map counts as Spearman 0 to the trained one, so a
    similarity that falls because the map went blank, not because it moved, can be read as such."""
    counted = [(row, row.record["randomization"]) for row in rows]
    counted = [(row, cascade) for row, cascade in counted if any(cascade.get("flattened") or [])]
    if not counted:
        return []
    stages = ", ".join(code(stage) for stage in counted[0][1]["stages"])
    images = sorted({(cascade.get("sensitivity") or {}).get("images") for _, cascade in counted} - {None})
    of = f" of {' or '.join(map(str, images))}" if images else ""
    listed = "; ".join(f"{row.label} {', '.join(map(str, cascade['flattened']))}" for row, cascade in counted)
    return [f"Maps the cascade turns flat (zero or constant where the trained map was not), on how many{of} images "
            f"after re-initialising {stages} in turn: {listed}. Each counts as Spearman 0 (nothing left of what it "
            "showed), so part of those maps' fall in similarity is the map going blank, not moving."]  # fmt: skip


def _score(row: Row, family: str, metric: str) -> dict[str, Any]:
    return row.record[family][metric]


def _left_out(evaluation: dict[str, Any]) -> list[str]:
    """The families each method left out, one line per family and reason with the methods it applies to (a
    dataset without masks leaves localisation out for every method: said once), then the methods not evaluated."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for method in evaluation["methods"].values():
        for family, reason in method["skipped"].items():
            grouped.setdefault((family, reason), []).append(text(method["title"]))
    every = len(evaluation["methods"])
    lines = [f"{family} left out for {'every method' if len(titles) == every > 1 else ', '.join(titles)}: "
             f"{prose(reason.removeprefix('left out '))}"
             for (family, reason), titles in grouped.items()]  # fmt: skip
    lines += [f"{code(name)}: not evaluated, {prose(reason)}" for name, reason in evaluation["not_evaluated"].items()]
    return ["**Not evaluated**", "\n".join(f"- {line}" for line in lines)] if lines else []


def _status(name: str, evaluation: dict[str, Any], findings: str) -> list[str]:
    """The one line a method's own section carries: at which layers the Findings trust its maps (the
    verdicts themselves are said once, there), and how far one map moves under noise where robustness does not
    support it (:func:`_unsteady`)."""
    layers = evaluation["methods"][name]["layers"]
    if list(layers) == [""]:
        return [f"**Checks on this run:** {trust_status(layers[''])} ({findings}).{_unsteady(layers, evaluation)}"]
    by_status: dict[str, list[str]] = {}
    for layer, record in layers.items():
        by_status.setdefault(trust_status(record), []).append(code(layer))
    said = [f"{status} at {', '.join(by_status[status])}" for status in TRUST_STATUSES if status in by_status]
    return [f"**Checks on this run:** {'; '.join(said)} ({findings}).{_unsteady(layers, evaluation)}"]


def _unsteady(layers: dict[str, Any], evaluation: dict[str, Any]) -> str:
    """`` A single map moves under noise: ...``: the max-sensitivity of the layers whose robustness verdict is not
    supported, beside the edge map's on the same noisy copies, with the noise and n; empty where none is. The sections
    show single images' maps, and the Findings' class means dilute what one map does under noise (FER2013: 0.87 for
    saliency, a grader found it played down)."""
    moved = []
    for layer, record in layers.items():
        cell = (record.get("robustness") or {}).get("max_sensitivity") or {}
        verdict = ((record.get("verdicts") or {}).get("robustness") or {}).get("verdict")
        edges = ((cell.get("against") or {}).get("edges") or {}).get("mean")
        if verdict == "not supported" and is_number(cell.get("value")) and is_number(edges):
            moved.append((layer, float(cell["value"]), float(edges), cell.get("images")))
    if not moved:
        return ""
    settings = (evaluation.get("settings") or {}).get("robustness") or {}
    shared = len({(f"{edges:.2f}", n) for _, _, edges, n in moved}) == 1  # the layers' images are the same
    listed = ", ".join(
        f"{value:.2f}{f' at {code(layer)}' if layer else ''}"
        + ("" if shared else f" (the edge map {edges:.2f}, n = {n})")
        for layer, value, edges, n in moved
    )
    if shared:
        listed += f" (the edge map {moved[0][2]:.2f}, n = {moved[0][3]})"  # fmt: skip
    samples, radius = text(settings.get("samples", "?")), text(settings.get("radius", "?"))
    return (f" A single map moves under noise: max-sensitivity {listed}, the largest change of the map relative to its "
            f"norm over {samples} copies with uniform noise of ±{radius} (model-input units): compare several images "
            "before reading one.")  # fmt: skip
