"""The figures of the visualization sections as markdown: which entries a method has, their captions.

The sections and the methods in them come from :mod:`convlens.registry`; the entries from the run's
``visualizations/manifest.json``. A section whose methods are absent still renders and says which
methods are missing and how to produce them. Every string from the manifest is escaped. Images are
called by the split they come from (the manifest's ``split``: test, validation or training images).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from convlens import registry
from convlens.report.assets import visualization_link
from convlens.report.format import is_number, number
from convlens.report.markdown import code, folded, prose, text
from convlens.rundir import CONFUSION_CSV, DEFAULT_SPLIT
from convlens.text import slug

Entries = Sequence[dict[str, Any]]
#: Keys of an image record in an entry; any other numeric key is a score, averaged in the caption.
IMAGE_KEYS = frozenset({"class", "true_label", "predicted_label", "confidence", "class_probability", "image_index",
                        "group"})  # fmt: skip
#: Keys of an entry; any other numeric key is a score of a figure of the model alone.
ENTRY_KEYS = frozenset({"method", "file", "layer", "images", "parameters", "seconds"})
#: How each group of images is introduced (``{images}``: e.g. "test images"), and whether it is folded away.
GROUP_TEXT = {
    "correct": ("correctly classified {images}", False),
    "mistake": ("misclassified {images}: of each true class its most confident mistake", True),
    "confused": ("the most confused class pairs, each image explained for its predicted and its true class", False),
}
#: Which pairs a figure of the most confused class pairs shows (grader review: LIME's third pair was not the
#: confusion matrix's third).
CONFUSED_RULE = ("the pairs most frequent among the visualize stage's own one-view predictions of the {images} it "
                 "classified, which can differ from the confusion matrix's (the whole split, with any test-time "
                 "views)")  # fmt: skip
#: The same, for pairs ranked by the run's test confusion matrix (since 2026-12-08).
MATRIX_RULE = ("the pairs most frequent in the test confusion matrix (section 5) that have an example among the "
               "{images} the visualize stage classified (one view), each shown by its most confident example there; "
               "a pair without one is passed over")  # fmt: skip
#: Captions list the images' indices up to this many images (the figure titles name every image).
SHOWN_INDICES = 3
#: A split's name in a sentence ("validation images").
SPLIT_WORDS = {"test": "test", "val": "validation", "train": "training"}


def method_entries(entries: Entries, method: str) -> list[dict[str, Any]]:
    """The entries of one method in manifest order."""
    return [entry for entry in entries if entry["method"] == method]


def group(entry: dict[str, Any]) -> str | None:
    """The group of images a figure shows (None: a figure of the model alone)."""
    groups = {image.get("group") for image in entry.get("images") or []}
    return groups.pop() if len(groups) == 1 else None


def missing_methods(section: registry.Section, entries: Entries, ran: Collection[str]) -> list[str]:
    """Methods of the section that the visualize stage has not run on this run (``ran``: the manifest's methods)."""
    present = {entry["method"] for entry in entries}
    return [method for method in registry.section_methods(section) if method not in present and method not in ran]


def empty_methods(section: registry.Section, entries: Entries, ran: Collection[str]) -> list[str]:
    """Methods that ran but drew nothing (e.g. residual-path projections of a model without residual blocks)."""
    present = {entry["method"] for entry in entries}
    return [method for method in registry.section_methods(section) if method in ran and method not in present]


def missing_note(methods: Sequence[str], run_label: str) -> str:
    """How to produce methods that the run's visualizations lack (in few words: a run visualized in part has one
    such note per section)."""
    return (
        f"> **Missing:** {_names(methods)}, not drawn in this run (`make visualize RUN={run_label}`, then "
        f"`make report RUN={run_label}`)."
    )


def skipped_notes(reasons: dict[str, str | None]) -> list[str]:
    """Why methods that ran drew no figure, as the visualize stage recorded it: one sentence per reason,
    naming every method it holds for (a generator-less run gave the same sentence for both generator methods)."""
    methods: dict[str, list[str]] = {}
    for method, reason in reasons.items():
        methods.setdefault(reason or "it produced no output", []).append(code(method))
    return [f"{', '.join(names)} drew no figure for this model: {prose(reason)}." for reason, names in methods.items()]


def method_block(
    method: str,
    entries: Entries,
    summary: dict[str, Any] | None,
    status: Sequence[str] = (),
    split: str = DEFAULT_SPLIT,
    said: Collection[str] = (),
    classes: Sequence[str] = (),
    group_sizes: Mapping[str, int] | None = None,
) -> str:
    """A method's heading, its settings, notes and run time from the manifest, the line saying where its
    maps are trusted on this run, and its figures (of images of ``split``, of the run's ``classes``);
    repeated detail (mistakes, a further view of the model alone, a ``detail`` method's charts) folded into
    <details>; notes in ``said`` are left out (the section says them once); a folded group that shows fewer
    images than ``group_sizes`` (per group, the most any figure of the run shows) says "1 of 7"."""
    summary = summary or {}
    parts = [f"### {text(registry.title(method))} ({code(method)})", _settings_line(summary)]
    parts += [f"> **Note:** {prose(note)}" for note in summary.get("notes", []) if str(note) not in said]
    parts += [f"> {line}" for line in status]
    elsewhere = _mistakes_explained_for_themselves(entries)
    for position, entry in enumerate(entries):
        kind = group(entry)
        description, fold = GROUP_TEXT.get(kind, ("", False))
        description = description.format(images=split_images(split))
        shown = figure(entry, split, classes, elsewhere)
        if fold:
            count, whole = _distinct_images(entry), (group_sizes or {}).get(kind or "", 0)
            part = f" of {whole}{_which_part(summary, entry)}" if whole > count else ""
            shown = folded(f"{description} ({count}{part})", shown)
        elif registry.METHODS[method].detail or (kind is None and position > 0):  # a chart, a further view
            shown = folded("the figure", shown)
        parts.append(shown)
    return "\n\n".join(parts)


def figure(
    entry: dict[str, Any], split: str = DEFAULT_SPLIT, classes: Sequence[str] = (), elsewhere: Collection[str] = ()
) -> str:
    """A manifest entry's image link and, when there is anything to say, its caption."""
    parts = (f"![{text(_alt(entry, split))}]({visualization_link(entry)})", caption(entry, split, classes, elsewhere))
    return "\n\n".join(part for part in parts if part)


def _mistakes_explained_for_themselves(entries: Entries) -> set[str]:
    """The true classes of the misclassified images a method's figures explain for their true class."""
    return {str(image.get("true_label")) for entry in entries if group(entry) == "mistake"
            for image in entry.get("images") or [] if image.get("class") == image.get("true_label")}  # fmt: skip


def group_sizes(entries: Entries) -> dict[str, int]:
    """Per group of images, the most images any figure of the run shows of it (a costly method may show a few)."""
    sizes: dict[str, int] = {}
    for entry in entries:
        kind = group(entry)
        if kind is not None:
            sizes[kind] = max(sizes.get(kind, 0), _distinct_images(entry))
    return sizes


def _distinct_images(entry: dict[str, Any]) -> int:
    """The images a figure shows, each once (a class never right has its mistake explained twice)."""
    return len({image.get("image_index") for image in entry.get("images") or []})


def split_images(split: str, count: int = 2) -> str:
    """``count`` images of ``split`` in words: "test images", "1 validation image"."""
    return f"{SPLIT_WORDS.get(split, text(split))} image{'s' if count != 1 else ''}"


def caption(
    entry: dict[str, Any], split: str = DEFAULT_SPLIT, classes: Sequence[str] = (), elsewhere: Collection[str] = ()
) -> str:
    """One line under a figure: layers, which images (how many, which group), the classes of ``classes``
    a figure of every chosen correctly classified image lacks (the model got none of their images right
    among those the visualize stage searched; a method whose ``images`` setting shows the first few says
    nothing of the others), pointing to the misclassified images for those explained there for themselves
    (``elsewhere``), which pairs a figure of confused pairs shows, the mean of their scores."""
    parts = []
    layers = entry.get("layer") or []
    names = [layers] if isinstance(layers, str) else layers
    if names:
        parts.append(("layer " if len(names) == 1 else "layers ") + ", ".join(code(name) for name in names))
    images = entry.get("images") or []
    counted = {(image.get("image_index"), image.get("class")) for image in images}
    distinct = list(dict.fromkeys(image.get("image_index") for image in images))
    if images:
        shown = f"{len(distinct)} {split_images(split, len(distinct))}"
        if len(distinct) <= SHOWN_INDICES:
            shown += f" ({', '.join(text(index) for index in distinct)})"
        if len(counted) > len(distinct):
            shown += f", {len(counted)} image-class pairs"
        parts.append(shown)
    present = {image.get("true_label") for image in images}
    absent = [name for name in classes if name not in present]
    every_chosen = (entry.get("parameters") or {}).get("images") is None  # not the first few of them
    if group(entry) == "correct" and every_chosen and absent:
        there = [text(name) for name in absent if name in elsewhere]
        pointer = (f" (the misclassified images explain {'its' if len(absent) == 1 else 'a'} mistake for "
                   f"{', '.join(there)} too)") if there else ""  # fmt: skip
        parts.append(
            f"no correctly classified {split_images(split, 1)} of {', '.join(text(name) for name in absent)} "
            f"found{pointer}"
        )
    if group(entry) == "confused":
        from_matrix = all(image.get("pairs_from") == CONFUSION_CSV for image in images)
        parts.append((MATRIX_RULE if from_matrix else CONFUSED_RULE).format(images=split_images(split)))
    by_score: dict[str, list[str]] = {}
    for key, value in sorted(mean_scores(entry).items()):
        name, layer = score_name(key, names)
        by_score.setdefault(name, []).append(f"{layer} {value:#.3g}".strip())  # 1.00 beside 0.0579, not 1
    parts += [f"{name} {', '.join(values)}" for name, values in by_score.items()]
    parts += _lowest(str(entry.get("method")), images)
    return f"*{' · '.join(parts)}*" if parts else ""


def _lowest(method: str, images: Sequence[dict[str, Any]]) -> list[str]:
    """Per score the method declares a threshold for (:func:`convlens.registry.weak_below`: under it a result
    explains little), the images under it with the probability of the class explained, or else the lowest
    (``lowest 0.551 (#413, explained for Neutral)``) where a figure shows two or more: a mean R² of 0.47 hid
    LIME fits of 0.25 and 0.33 in FER2013's confused pairs, and a lowest of 0.272 hid a second fit under 0.3,
    each for the true class at a probability under 0.2 (graders' findings)."""
    said = []
    for key, floor in registry.weak_below(method).items():
        scored = sorted((image for image in images if is_number(image.get(key))), key=lambda image: float(image[key]))
        weak = [image for image in scored if float(image[key]) < floor]
        if weak:
            listed = ", ".join(f"{float(image[key]):#.3g} ({_explained(image)})" for image in weak)
            said.append(f"{len(weak)} of {len(scored)} under {floor:g}, fits that explain little of the answer: "
                        f"{listed}")  # fmt: skip
        elif len(scored) >= 2:
            said.append(f"lowest {float(scored[0][key]):#.3g} ({_explained(scored[0])})")
    return said


def _explained(image: dict[str, Any]) -> str:
    """``#229, explained for Neutral at probability 0.14`` (the probability where the manifest has it)."""
    probability = image.get("class_probability")
    at = f" at probability {float(probability):.2g}" if is_number(probability) else ""
    return f"#{text(image.get('image_index'))}, explained for {text(image.get('class'))}{at}"


#: Score keys whose words alone would not say what they measure, in the trust table's terms.
SCORE_WORDS = {
    "mask_energy": "relevance mass (map's share on the object, these images)",
    "mask_area": "object area (share of the image)",
    "local_r2": "R² of LIME's local linear model",
}


def score_name(key: str, layers: Sequence[str]) -> tuple[str, str]:
    """A score's key in words (:data:`SCORE_WORDS` where the key's own would not do) and its layer as the
    model names it ('' for none): ``mean feature_loss_drop_layer4_1_relu`` (the manifest's key holds the
    layer's file-name slug) -> (mean feature loss drop, `layer4.1.relu`)."""
    prefix, _, bare = key.rpartition(" ")
    for layer in sorted(layers, key=len, reverse=True):
        suffix = f"_{slug(layer)}"
        if bare.endswith(suffix):
            return _words(prefix, bare[: -len(suffix)]), code(layer)
    return _words(prefix, bare), ""


def _words(prefix: str, bare: str) -> str:
    return text(" ".join(part for part in (prefix, SCORE_WORDS.get(bare, bare.replace("_", " "))) if part))


def mean_scores(entry: dict[str, Any]) -> dict[str, float]:
    """The figure's scores: those of the model alone, or per image averaged over the images it shows."""
    scores = {key: value for key, value in entry.items() if key not in ENTRY_KEYS and is_number(value)}
    images = entry.get("images") or []
    keys = sorted(
        {key for image in images for key, value in image.items() if key not in IMAGE_KEYS and is_number(value)}
    )
    for key in keys:
        values = [float(image[key]) for image in images if is_number(image.get(key))]
        scores[f"mean {key}"] = sum(values) / len(values)
    return scores


def _which_part(summary: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """Which of a group's images a method limited by its ``images`` setting shows (``Explained`` in
    :mod:`convlens.visualize.context`), named: FER2013's LIME showed Disgust's mistake under "of each true class its
    most confident mistake (1 of 7)" with no word of how it was chosen, then under a rule a grader could not parse."""
    images = (summary.get("parameters") or {}).get("images")
    if type(images) is not int:
        return ""
    shown = list({image.get("image_index"): image for image in entry.get("images") or []}.values())
    named = ", ".join(f"{text(str(image.get('true_label', image.get('class', '?'))))} #{image.get('image_index')}"
                      for image in shown)  # fmt: skip
    return (
        f": {named}; this method explains one image for each of the first {images} classes, a mistake only where "
        "a class has no correctly classified one"
    )


def _settings_line(summary: dict[str, Any]) -> str:
    """The method's settings (folded: they are for who reruns it) and its run time."""
    parameters = summary.get("parameters") or {}
    shown = ", ".join(f"{text(key)}={text(number(value))}" for key, value in sorted(parameters.items()))
    seconds = summary.get("seconds")
    timing = f" · {seconds:.1f} s" if is_number(seconds) else ""
    return folded(f"Settings{timing}", shown) if shown else f"Settings: none{timing}"


def _names(methods: Sequence[str]) -> str:
    return ", ".join(code(method) for method in methods)


def _alt(entry: dict[str, Any], split: str) -> str:
    kind = group(entry)
    description = GROUP_TEXT[kind][0].format(images=split_images(split)) if kind in GROUP_TEXT else ""
    return f"{entry['method']} {description}".strip()
