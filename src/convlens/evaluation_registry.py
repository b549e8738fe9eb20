"""The evaluation-family registry: every family of metrics is declared here once, and nowhere else.

The evaluate stage runs the registered families in order and records each in ``evaluation.json``;
the config schema types ``evaluate.<family>`` by the family's settings dataclass; the report's trust
table takes its columns, and what a worse-than-random score means, from the family's metrics. Like
the method registry (:mod:`convlens.registry`), an entry names its functions by ``"module:attribute"``
path, imported only when the family runs, so the report reads this table without importing torch.

Adding a family: write its scoring function and its settings dataclass, and one
:func:`register_family` call (here, or in your own code before the stage runs and the schema is
registered); ``docs/architecture.md`` walks through an example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    """One score of a family, as the report's trust table shows it: its key in the family's record,
    its column ``label``, which direction is ``better``, the sentence saying what a score ``worse``
    than random maps' means (the report prints it where a map does so), and what it ``means`` in one
    line (the report's glossary, which fills its ``{name}`` fields from the family's recorded settings)."""

    key: str
    label: str
    better: Literal["higher", "lower"]
    worse: str
    means: str = ""


@dataclass(frozen=True)
class FamilySpec:
    """One family of metrics.

    ``score``: ``(subject: Subject, params) -> Family`` (:mod:`convlens.evaluate.families`), the records
    per method and layer, the methods left out with the reason, the random baseline, and optionally a
    figure payload. ``settings``: the dataclass of its settings, whose field defaults are the only
    defaults. ``metrics``: the scores the trust table shows as columns (none: the report shows the
    family its own way, as the randomization cascade). ``recomputes``: it computes maps afresh (per
    randomization step, per noise draw), so the methods in its ``skip`` setting (by default the
    costly ones, :func:`convlens.registry.costly_methods`) are left out before it runs.
    ``figure``: ``(payload, evaluation) -> Figure``, drawing the payload into ``evaluation/cascade.png``.
    ``long_running``: among the costliest families, handed to a worker process first so that the
    workers finish together (:func:`convlens.evaluate.stage.run_families`). ``beyond_model_free``: its
    verdict is "supported" only where each other baseline its cells are tested against (the model-free maps,
    :mod:`convlens.evaluate.baselines`) is better on none of them and beaten on at least one of the metrics on
    which the map beats the reference, the same metric or another: a ranking of pixels that a map ignoring the
    model matches or betters says nothing about the model
    (:func:`convlens.evaluate.verdicts.family_verdict`). ``parts``: independent shares of its work, each
    with its own metrics and baselines; with several workers each part runs as its own task (its ``score``
    called with ``part=``), and the parts' records are merged layer by layer, so the scores are the same
    either way.
    """

    name: str
    title: str
    score: str
    settings: str
    metrics: tuple[Metric, ...] = ()
    recomputes: bool = False
    figure: str | None = None
    long_running: bool = False
    beyond_model_free: bool = False
    parts: tuple[str, ...] = ()


#: Family name (config key, ``evaluation.json`` key) -> its declaration, in the order the stage runs them.
FAMILIES: dict[str, FamilySpec] = {}


def register_family(spec: FamilySpec) -> FamilySpec:
    """Add ``spec`` (its name must be new); returns it."""
    if spec.name in FAMILIES:
        raise ValueError(f"a family named {spec.name!r} is registered already")
    FAMILIES[spec.name] = spec
    return spec


def unregister_family(name: str) -> None:
    """Remove a family (for families registered by tests or plug-ins)."""
    FAMILIES.pop(name, None)


def scored_metrics() -> list[tuple[str, Metric]]:
    """(family, metric) of every trust-table column, in registry order."""
    return [(name, metric) for name, spec in FAMILIES.items() for metric in spec.metrics]


def _family(
    name: str,
    title: str,
    params: str,
    *metrics: Metric,
    recomputes: bool = False,
    figure: str | None = None,
    long_running: bool = False,
    beyond_model_free: bool = False,
    parts: tuple[str, ...] = (),
) -> FamilySpec:
    """A convlens family: its function ``<name>`` in ``convlens.evaluate.families``, its settings
    ``params`` in ``convlens.evaluate.<name>``."""
    score, settings = f"convlens.evaluate.families:{name}", f"convlens.evaluate.{name}:{params}"
    return register_family(
        FamilySpec(name, title, score, settings, metrics, recomputes, figure, long_running, beyond_model_free, parts)
    )


_family(
    "localisation",
    "Localisation",
    "LocalisationParams",
    Metric("pointing_game", "pointing game", "higher", "its peak lies on the class evidence less often than a "
           "random map's", "share of images whose map peaks on the object (its ground-truth mask)"),
    Metric("relevance_mass", "relevance mass", "higher", "less of its mass lies on the class evidence than a "
           "random map's", "share of the map's total value that lies on the object"),
    Metric("rank_accuracy", "rank accuracy", "higher", "fewer of its top pixels lie on the class evidence than a "
           "random map's", "share of the map's top pixels (as many as the object has) that lie on the object"),
)  # fmt: skip
_family(
    "faithfulness",
    "Faithfulness",
    "FaithfulnessParams",
    Metric("deletion_auc", "deletion AUC", "lower", "deleting its top pixels lowers the class probability more "
           "slowly than deleting random pixels", "area under the class probability as the map's top pixels are "
           "removed, tile by tile: a faithful map makes it fall fast"),
    Metric("insertion_auc", "insertion AUC", "higher", "inserting its top pixels restores the class probability "
           "more slowly than inserting random pixels", "area under the class probability as the map's top pixels "
           "are put back into a blurred copy: a faithful map makes it rise fast"),
    Metric("road", "ROAD", "higher", "removing its most relevant pixels (the gaps filled from their neighbours) "
           "hurts the prediction less, set against removing its least relevant ones, than with random maps",
           "class probability after removing the map's least relevant pixels minus "
           "after removing its most relevant ones, the gaps filled from their neighbours so that their shape "
           "does not give them away"),
    long_running=True,
    beyond_model_free=True,
    parts=("perturbation", "road"),  # ROAD (its imputation) is most of the family's time: two tasks
)  # fmt: skip
_family(
    "randomization",
    "Model-parameter randomization",
    "RandomizationParams",
    recomputes=True,
    figure="convlens.figures.evaluation:draw_cascade",
)
_family(
    "robustness",
    "Robustness",
    "RobustnessParams",
    Metric(
        "max_sensitivity",
        "max-sensitivity",
        "lower",
        "it moves more under small input noise than the edge detector's map of the same noisy images",
        "the largest change of the map (relative) over {samples} copies of the input with uniform noise up to "
        "±{radius} added (model-input units: pixel values over the normalisation's data.std, so 1 is one data.std): "
        "a steady map scores low",
    ),
    recomputes=True,
    long_running=True,
)

#: How verdicts and sentences name the reference a cell is judged against (its ``reference``).
REFERENCES = {
    "random": "random maps",
    "edges": "the edge detector's map",
    "centre": "the centred blob",
}
