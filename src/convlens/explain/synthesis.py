"""The numbers of the generator-prior comparison (:mod:`convlens.explain.generator`) per class and method,
and the report's sentences about them, each computed from those numbers with its threshold named."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from torch import Tensor

#: A method failed for a class when the classifier's mean confidence in the class is below this.
FAILED_CONFIDENCE = 0.5
#: A generator method convinces for a class with a mean confidence of at least this and a KID of at most
#: ``REALISM_FACTOR`` times the real images' yardstick (the bar issue 26 sets).
CONFIDENT = 0.9
REALISM_FACTOR = 2.0
#: PPGN-h samples a class well when at least this share of its samples are not failed and reach ``FAILED_CONFIDENCE``
#: (issue 26: 2 of 3): a chain is judged by its samples, not by a mean one good sample can carry.
SAMPLE_SHARE = 2 / 3
#: A method is as confident as pixel space when its mean confidence is at most this much lower (both are
#: often 1.00 to two decimals, where a strictly higher confidence would be decided by rounding noise) or at
#: least ``CONFIDENT``: DGN-AM stops at its ``stop_confidence`` on purpose, and above the bar realism decides.
CONFIDENCE_TIE = 0.01
#: The columns of the comparison, in order: method key -> title.
METHOD_TITLES = {"pixel": "class model (pixel space)", "dgn_am": "DGN-AM", "ppgn": "PPGN-h"}


@dataclass(frozen=True)
class Synthesis:
    """One method's images per class, ``images`` (K, S, C, H, W): model input (``input_space``) or pixels
    in [0, 1]; the classifier's softmax ``confidence`` for the class and the class ``logit``, both (K, S);
    ``realism``: the KID (K,) of each class's S images against real held-out images of the class;
    ``failed``: per class and sample the reason it is no result (``"constant"``, ``"out of range"``) or None."""

    images: Tensor
    confidence: Tensor
    logit: Tensor
    realism: Tensor
    failed: tuple[tuple[str | None, ...], ...]
    input_space: bool

    def failure_counts(self) -> Counter[str]:
        return Counter(reason for row in self.failed for reason in row if reason)

    def class_record(self, row: int) -> dict[str, Any]:
        """The class's numbers for the JSON record."""
        samples = [round(float(p), 4) for p in self.confidence[row]]  # PPGN-h's bar counts samples, not the mean
        return {"confidence": round(float(self.confidence[row].mean()), 4), "kid": round(float(self.realism[row]), 4),
                "confidences": samples, "failed": list(self.failed[row])}  # fmt: skip


@dataclass(frozen=True)
class GeneratorComparison:
    """Per class (``classes``, K, named ``names``) the three methods' images, and the real images'
    realism ``yardstick`` (K,): the KID that 90% of random sets of as many real held-out images stay under;
    ``dgn_am_objective``: what DGN-AM ascended (its logit is compared with pixel space's only if the logit)."""

    classes: Tensor
    names: tuple[str, ...]
    methods: dict[str, Synthesis]
    yardstick: Tensor
    dgn_am_objective: str = "logit"

    def scores(self, row: int | None) -> dict[str, Any]:
        """Per method the mean confidence and logit, the median KID over classes and the failed samples'
        count; the real yardstick's median; and ``per_class``, every class's numbers with failure reasons."""
        found: dict[str, Any] = {"real_kid_yardstick": round(float(self.yardstick.float().quantile(0.5)), 4)}
        for name, synthesis in self.methods.items():
            found[f"{name}_confidence"] = round(float(synthesis.confidence.mean()), 4)
            found[f"{name}_logit"] = round(float(synthesis.logit.mean()), 4)
            found[f"{name}_kid"] = round(float(synthesis.realism.float().quantile(0.5)), 4)
            found[f"{name}_failed_samples"] = sum(synthesis.failure_counts().values())
        found["per_class"] = [
            {"class": label, "real_kid_yardstick": round(float(self.yardstick[row]), 4)}
            | {name: synthesis.class_record(row) for name, synthesis in self.methods.items()}
            for row, label in enumerate(self.names)
        ]
        return found

    def beats_pixel(self, name: str, row: int) -> bool:
        """Whether method ``name`` is, for class ``row``, as confident as pixel space (within ``CONFIDENCE_TIE``,
        or at least ``CONFIDENT``) and has a lower KID."""
        method, pixel = self.methods[name], self.methods["pixel"]
        enough = min(float(pixel.confidence[row].mean()) - CONFIDENCE_TIE, CONFIDENT)
        confident = float(method.confidence[row].mean()) >= enough
        return confident and float(method.realism[row]) < float(pixel.realism[row])

    def convinces(self, name: str, row: int) -> bool:
        """Whether method ``name`` reaches ``CONFIDENT`` and a KID within ``REALISM_FACTOR`` of the yardstick."""
        method = self.methods[name]
        realistic = float(method.realism[row]) <= REALISM_FACTOR * float(self.yardstick[row])
        return float(method.confidence[row].mean()) >= CONFIDENT and realistic

    def notes(self) -> list[str]:
        """The comparison in one sentence each, for the report."""
        return [self.confidence_note(), self.realism_note(), *self.failed_sample_notes(), *self.verdict_notes(),
                self.sampling_note(), *self.failures()]  # fmt: skip

    def confidence_note(self) -> str:
        scores = self.scores(None)
        confidence = ", ".join(f"{METHOD_TITLES[name]} {scores[f'{name}_confidence']:.2f}" for name in self.methods)
        return f"Mean confidence of the classifier in the class each image was made for: {confidence}."

    def realism_note(self) -> str:
        """Per class each method's KID beside the real images' yardstick."""
        classes = "; ".join(f"{label}: {self._class_kids(row)}" for row, label in enumerate(self.names))
        return (
            "Realism, the Kernel Inception Distance of each class's images to real held-out images of the class in "
            "the channel means of the classifier's layer3 (0: indistinguishable; the yardstick is the KID that 90% "
            f"of random sets of as many real held-out images stay under): {classes}."
        )

    def _class_kids(self, row: int) -> str:
        kids = ", ".join(f"{METHOD_TITLES[name]} {float(s.realism[row]):.3g}" for name, s in self.methods.items())
        return f"{kids} (real <= {float(self.yardstick[row]):.3g})"

    def failed_sample_notes(self) -> list[str]:
        """``k of n samples failed (reasons)`` for each method with failed samples."""
        found = []
        for name, synthesis in self.methods.items():
            counts, total = synthesis.failure_counts(), synthesis.confidence.numel()
            if counts:
                reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
                found.append(f"{METHOD_TITLES[name]}: {sum(counts.values())} of {total} samples failed ({reasons}); "
                             "they are marked 'failed' in the figure and are no picture of the class.")  # fmt: skip
        return found

    def verdict_notes(self) -> list[str]:
        """Per generator method: for how many classes it beats pixel space on both counts, and convinces."""
        found, total = [], len(self.names)
        for name in (key for key in self.methods if key != "pixel"):
            beats = [label for row, label in enumerate(self.names) if self.beats_pixel(name, row)]
            convinces = [label for row, label in enumerate(self.names) if self.convinces(name, row)]
            found.append(
                f"{METHOD_TITLES[name]} is as confident as pixel space and more realistic (a mean confidence at "
                f"least {CONFIDENT} or at most {CONFIDENCE_TIE} below it, and a lower KID) for {len(beats)} of {total} "
                f"classes{_listed(beats)}; "
                f"it reaches confidence >= {CONFIDENT} with a KID within {REALISM_FACTOR:g}x of the real yardstick "
                f"for {len(convinces)} of {total}{_listed(convinces)}."
            )
        return found

    def required_samples(self) -> int:
        """How many of a class's PPGN-h samples must be results at ``FAILED_CONFIDENCE`` (2 of 3)."""
        return math.ceil(SAMPLE_SHARE * self.methods["ppgn"].confidence.shape[1] - 1e-9)

    def samples_class(self, row: int) -> bool:
        """Whether ``required_samples`` of PPGN-h's samples of class ``row`` are not failed and confident."""
        ppgn = self.methods["ppgn"]
        confident = [p >= FAILED_CONFIDENCE for p in ppgn.confidence[row].tolist()]
        good = [yes and not reason for yes, reason in zip(confident, ppgn.failed[row], strict=True)]
        return sum(good) >= self.required_samples()

    def sampling_note(self) -> str:
        """For how many classes PPGN-h's samples draw the class (``samples_class``)."""
        classes = [label for row, label in enumerate(self.names) if self.samples_class(row)]
        share = f"{self.required_samples()} of {self.methods['ppgn'].confidence.shape[1]}"
        return (f"PPGN-h: at least {share} samples are not failed and reach confidence >= {FAILED_CONFIDENCE} for "
                f"{len(classes)} of {len(self.names)} classes{_listed(classes)}.")  # fmt: skip

    def failures(self) -> list[str]:
        """Plain statements of where a method failed on this run: classes whose images the classifier
        does not assign to the class, and DGN-AM falling short of pixel space's logit at equal steps when the
        logit is what it ascended."""
        found = []
        for name, synthesis in self.methods.items():
            missed = int((synthesis.confidence.mean(1) < FAILED_CONFIDENCE).sum())
            if missed:
                found.append(
                    f"{METHOD_TITLES[name]} failed for {missed} of {len(self.classes)} classes: the classifier's mean "
                    f"confidence in the class stayed below {FAILED_CONFIDENCE} there, so those images do not show what "
                    "the class wants."
                )
        dgn_am, pixel = float(self.methods["dgn_am"].logit.mean()), float(self.methods["pixel"].logit.mean())
        if dgn_am < pixel and self.dgn_am_objective == "logit":
            found.append(
                f"DGN-AM reached a lower mean class logit than pixel space at equal steps ({dgn_am:.3g} vs "
                f"{pixel:.3g}): on this run the generator cannot draw what drives the logits as high as free pixels "
                "can (docs/generator.md)."
            )
        return found


def _listed(labels: list[str]) -> str:
    return f" ({', '.join(labels)})" if labels else ""
