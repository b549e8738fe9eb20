"""Where the maps put their mass: per class, each method's share of attribution in each part of the image
(the parts the synthetic generator drew, or fixed boxes on roughly centred face crops), next to the part's share of
the area, with a 95% bootstrap interval over the images (``scipy.stats.bootstrap``).

A map that is flat (zero or constant: no location) on an image is left out of that image's class, and counted
(``flat``). This is what the report's "where does the model look?" answers from. The shares are a description: a
part with a share well above its area is where a map puts the evidence; whether that map can be believed
is the other families' question, so the report reads these shares only for the methods they support.

One test is made here, because a part every class favours (the mouth box of every FER2013 class, a centre
prior) says nothing about any one class: per class and part, ``distinct`` compares the class's images with the
other classes' images on the share minus the image's area of the part, by a one-sided permutation test of the
difference of means (``scipy.stats.permutation_test``), Benjamini-Hochberg adjusted over every class and part of
the map (``scipy.stats.false_discovery_control``); only classes with at least ``MIN_IMAGES`` located maps on
both sides are tested. ``pairs`` compares every two such classes the same way, two-sided (which class's maps
put more on a part; the report reads it for the pairs the model confuses most), adjusted over every pair and
part of the map. ``mistakes`` compares, within a class row, the images the model got wrong with those it got right
the same way (two-sided, Benjamini-Hochberg over every tested class and part of the map; rows with at least
``MIN_IMAGES`` located maps of each): explained for the class predicted, whether the model answers a class on images
of other classes from the same evidence as on the class's own (the report reads it for the answer the figures'
mistakes share).

A share is read against maps that ignore the model (:mod:`convlens.evaluate.baselines`) on the same images:
per class, ``beyond`` holds the paired difference, the map's share minus the edge map's (or the centred blob's)
on each image, with its bootstrap interval. Paired because the images differ between classes (a class of open
mouths has more edges at the mouth): a pooled reference over every image would compare unlike sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor

from convlens.evaluate.baselines import model_free_maps
from convlens.evaluate.inputs import Images, MethodMaps
from convlens.evaluate.similarity import is_flat
from convlens.evaluate.statistics import MIN_IMAGES
from convlens.forked import forked_map

#: Bootstrap resamples per interval: percentile intervals of a mean need no more at these sample sizes.
RESAMPLES = 999
CONFIDENCE = 0.95


def resize_parts(parts: Tensor, size: tuple[int, int]) -> Tensor:
    """Part maps (N, h, w) uint8 at the model's input ``size`` (nearest neighbour, as the masks)."""
    return F.interpolate(parts[:, None].float(), size=size, mode="nearest")[:, 0].round().to(torch.uint8)


def part_shares(maps: Tensor, parts: Tensor, count: int) -> Tensor:
    """Per image (N, count): the share of the map's total in each part; a zero map gives the areas
    (:func:`located` tells those apart: :func:`regions` leaves them out)."""
    onehot = F.one_hot(parts.flatten(1).long(), count).to(maps.dtype)  # (N, HW, count)
    mass = torch.einsum("np,npk->nk", maps.flatten(1).clamp_min(0), onehot)
    total = mass.sum(dim=1, keepdim=True)
    return torch.where(total > 0, mass / total.clamp_min(torch.finfo(maps.dtype).tiny), area_shares(parts, count))


def located(maps: Tensor) -> Tensor:
    """Per map (N,): whether its positive part has a location at all (not zero or constant everywhere, as a
    CAM that no positive evidence reaches): a flat map's shares are the areas, which say nothing."""
    return ~is_flat(maps.clamp_min(0))


def area_shares(parts: Tensor, count: int) -> Tensor:
    """Per image (N, count): each part's share of the image."""
    return F.one_hot(parts.flatten(1).long(), count).float().mean(dim=1)


def summary(shares: np.ndarray, seed: int) -> dict[str, list[float | None]]:
    """Mean share per part over the images (n, parts), with a percentile bootstrap interval (None on fewer
    than 2 images or when every image agrees)."""
    mean = shares.mean(axis=0)
    low = high = [None] * shares.shape[1]
    if len(shares) >= 2 and np.ptp(shares, axis=0).max() > 0:
        found = stats.bootstrap((shares,), np.mean, axis=0, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                                method="percentile", random_state=seed).confidence_interval  # fmt: skip
        low, high = _rounded(np.nan_to_num(found.low, nan=mean)), _rounded(np.nan_to_num(found.high, nan=mean))
    return {"share": _rounded(mean), "low": low, "high": high}


def regions(images: Images, methods: dict[str, MethodMaps], names: tuple[str, ...], source: str,
            seed: int, workers: int = 1) -> dict[str, Any] | None:  # fmt: skip
    """The JSON record: parts, where they come from, which are the class evidence, per class explained its
    images, how many of them belong to another true class (``other_true_class``: images the model misclassified
    as the class, when each is explained for the class predicted; where the labels are known), how many the
    model got wrong (``misclassified``, either way of explaining; where the predictions are known too) and area shares,
    per method and layer per class its shares (classes keyed by their index as a
    string) and, where the predictions are known, its mistakes against its right answers (``mistakes``,
    :func:`_with_mistakes`), per method and layer the class pairs' tests (``pairs``, keyed ``"a-b"``), and the
    model-free maps' shares over every image (``model_free``; per class, ``beyond`` tests each map against them on the
    same images: :func:`_beyond`); None without parts. On a CPU the methods share out among ``workers`` forked
    processes (their hundreds of permutation tests take seconds)."""
    if images.parts is None or not names:
        return None
    areas = area_shares(images.parts, len(names)).cpu().numpy()
    targets = images.targets.cpu().numpy()
    labels = None if images.labels is None else np.asarray(images.labels)
    wrong = None if labels is None or images.predicted is None else np.asarray(images.predicted) != labels
    classes = {str(c): {"images": int((targets == c).sum()), "area": _rounded(areas[targets == c].mean(axis=0))}
               | ({} if labels is None else {"other_true_class": int(((targets == c) & (labels != c)).sum())})
               | ({} if wrong is None else {"misclassified": int(((targets == c) & wrong).sum())})
               for c in np.unique(targets)}  # fmt: skip
    record = {"parts": list(names), "from": source, "grouped_by": "the class each image is explained for",
              "evidence": evidence_parts(images, names), "classes": classes, "methods": {}, "pairs": {}}  # fmt: skip
    references = {name: (part_shares(maps.to(images.parts.device), images.parts, len(names)).cpu().numpy(),
                         located(maps).cpu().numpy())
                  for name, maps in model_free_maps(images.display).items()}  # fmt: skip

    def method_record(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Per layer of method ``name`` its classes' record and its class pairs' tests."""
        maps = methods[name]
        rows = images.positions(maps.keys)
        picked = rows.cpu().numpy()
        explained, parts, area = targets[picked], images.parts[rows], areas[picked]
        theirs = {free: (shares[picked], kept[picked]) for free, (shares, kept) in references.items()}
        mistaken = None if wrong is None else wrong[picked]
        layers, pairs = {}, {}
        for layer, values in maps.layers.items():
            shares, kept = part_shares(values, parts, len(names)).cpu().numpy(), located(values).cpu().numpy()
            per_class = _beyond(_per_class(shares, explained, kept, seed), shares, explained, kept, theirs, seed)
            per_class = _with_contrasts(per_class, shares - area, explained, kept, seed)
            if mistaken is not None:
                per_class = _with_mistakes(per_class, shares, area, explained, kept, mistaken, seed)
            layers[layer], pairs[layer] = per_class, _pairs(shares - area, explained, kept, seed)
        return layers, pairs

    processes = workers if images.inputs.device.type == "cpu" else 1
    for name, (layers, pairs) in zip(methods, forked_map(method_record, list(methods), processes), strict=True):
        record["methods"][name], record["pairs"][name] = layers, pairs
    record["model_free"] = model_free_shares(references, seed)
    return record


def model_free_shares(references: dict[str, tuple[np.ndarray, np.ndarray]], seed: int) -> dict[str, dict[str, Any]]:
    """Per model-free map (its shares and whether it has a location, per sample image) its mean share of each
    part over every sample image, with its interval: what a map that ignores the model puts where, shown beside
    the classes' rows (the test is ``beyond``'s, per class on the same images)."""
    found = {}
    for name, (shares, kept) in references.items():
        nothing = dict.fromkeys(("share", "low", "high"), [None] * shares.shape[1])
        found[name] = {"images": int(kept.sum())} | (summary(shares[kept], seed) if kept.any() else nothing)
    return found


def evidence_parts(images: Images, names: tuple[str, ...]) -> list[str]:
    """The parts that lie inside the ground-truth evidence masks (all but 1% of their pixels); none
    without masks (real data: which part carries the class is what the question asks)."""
    if images.masks is None or images.parts is None:
        return []
    inside = [images.masks[images.parts == index].float().mean() for index in range(len(names))]
    return [name for name, share in zip(names, inside, strict=True) if share.isfinite() and share >= 0.99]


def _per_class(shares: np.ndarray, explained: np.ndarray, has_location: np.ndarray, seed: int) -> dict[str, Any]:
    """Per class explained: the images whose map has a location (``images``), the ``flat`` ones left out,
    and the summary of the former (None everywhere when there are none)."""
    found = {}
    for c in np.unique(explained):
        kept = (explained == c) & has_location
        flat = int(((explained == c) & ~has_location).sum())
        nothing = dict.fromkeys(("share", "low", "high"), [None] * shares.shape[1])
        found[str(c)] = {"images": int(kept.sum()), "flat": flat} | (
            summary(shares[kept], seed) if kept.any() else nothing
        )
    return found


def _beyond(found: dict[str, Any], shares: np.ndarray, explained: np.ndarray, has_location: np.ndarray,
            references: dict[str, tuple[np.ndarray, np.ndarray]], seed: int) -> dict[str, Any]:  # fmt: skip
    """``found`` with ``beyond`` per class: for each model-free map (``references``: its shares and whether it
    has a location, on the same rows), the paired difference of shares (the map's minus the model-free map's)
    over the images where both have a location, with ``images`` and the :func:`summary` of the differences."""
    for key, record in found.items():
        record["beyond"] = {}
        for name, (theirs, their_location) in references.items():
            both = (explained == int(key)) & has_location & their_location
            nothing = dict.fromkeys(("share", "low", "high"), [None] * shares.shape[1])
            paired = summary(shares[both] - theirs[both], seed) if both.any() else nothing
            record["beyond"][name] = {"images": int(both.sum()), "difference": paired["share"],
                                      "low": paired["low"], "high": paired["high"]}  # fmt: skip
    return found


def _with_contrasts(
    found: dict[str, Any], excess: np.ndarray, explained: np.ndarray, has_location: np.ndarray, seed: int
) -> dict[str, Any]:  # fmt: skip
    """``found`` with ``distinct`` per tested class: per part the difference of mean excess (share minus area)
    between the class's located maps and the other classes', its one-sided permutation p-value and the
    Benjamini-Hochberg adjusted one over every tested class and part (see the module's docstring)."""
    tested = {}
    for key in found:
        inside = (explained == int(key)) & has_location
        outside = (explained != int(key)) & has_location
        if min(inside.sum(), outside.sum()) >= MIN_IMAGES:
            tested[key] = _contrast(excess[inside], excess[outside], seed)
    for key, test in _adjusted(tested).items():
        found[key]["distinct"] = test
    return found


def _with_mistakes(
    found: dict[str, Any], shares: np.ndarray, area: np.ndarray, explained: np.ndarray, has_location: np.ndarray,
    wrong: np.ndarray, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """``found`` with ``mistakes`` per class row holding at least ``MIN_IMAGES`` located maps the model got wrong and
    as many it got right: both groups' :func:`summary` (``wrong``, ``right``) with their numbers of images, and per
    part the difference of mean excess (wrong minus right) with its two-sided permutation p-value, adjusted over every
    tested class and part."""
    tested = {}
    for key in found:
        row = (explained == int(key)) & has_location
        if min((row & wrong).sum(), (row & ~wrong).sum()) >= MIN_IMAGES:
            tested[key] = (row & wrong, row & ~wrong)
    excess = shares - area
    contrasts = {key: _contrast(excess[bad], excess[good], seed, "two-sided") for key, (bad, good) in tested.items()}
    for key, test in _adjusted(contrasts).items():
        groups = {name: {"images": int(rows.sum())} | summary(shares[rows], seed)
                  for name, rows in zip(("wrong", "right"), tested[key], strict=True)}  # fmt: skip
        found[key]["mistakes"] = groups | test
    return found


def _pairs(excess: np.ndarray, explained: np.ndarray, has_location: np.ndarray, seed: int) -> dict[str, Any]:
    """``{"a-b": {"difference", "p", "p_adjusted"}}`` for every two classes ``a < b`` with at least
    ``MIN_IMAGES`` located maps each: per part the difference of mean excess (a minus b) and its two-sided
    permutation p-value, adjusted over every pair and part of the map."""
    counts = {int(c): int(((explained == c) & has_location).sum()) for c in np.unique(explained)}
    tested = [c for c, count in counts.items() if count >= MIN_IMAGES]
    found = {
        f"{a}-{b}": _contrast(excess[(explained == a) & has_location], excess[(explained == b) & has_location], seed,
                              "two-sided")
        for index, a in enumerate(tested) for b in tested[index + 1 :]
    }  # fmt: skip
    return _adjusted(found)


def _adjusted(contrasts: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, list[float]]]:
    """Per key its contrast's per-part ``difference`` and ``p`` with ``p_adjusted``: Benjamini-Hochberg over every
    key and part together (``distinct``, ``mistakes`` and ``pairs`` each adjust their own table this way)."""
    if not contrasts:
        return {}
    adjusted = iter(stats.false_discovery_control(np.concatenate([p for _, p in contrasts.values()]), method="bh"))
    return {key: {"difference": _rounded(difference), "p": _rounded(p),
                  "p_adjusted": _rounded([next(adjusted) for _ in p])}
            for key, (difference, p) in contrasts.items()}  # fmt: skip


def _contrast(
    inside: np.ndarray, outside: np.ndarray, seed: int, alternative: str = "greater"
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per part, the difference of means (inside minus outside) and its permutation p-value (``alternative``)."""
    result = stats.permutation_test(
        (inside, outside), lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis), permutation_type="independent",
        vectorized=True, n_resamples=RESAMPLES, alternative=alternative, axis=0, random_state=seed,
    )  # fmt: skip
    return result.statistic, result.pvalue


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), 4) for value in values]
