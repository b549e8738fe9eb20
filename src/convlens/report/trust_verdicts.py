"""The trust table's cells and verdicts, as ``evaluation/evaluation.json`` records them: a score with
its random baseline, the 95% interval of the paired difference and its mark; the images per column;
the verdict of each family of metrics; and one overall sentence per map derived from those verdicts
(the report recomputes nothing)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from convlens.evaluation_registry import FAMILIES, scored_metrics
from convlens.report.format import mean
from convlens.report.markdown import prose, text

#: The fewest images the evaluation tests (``convlens.evaluate.statistics.MIN_IMAGES``, which the report
#: does not import: it reads files, not torch; a test keeps the two equal). Fewer get no mark and no claim.
MIN_IMAGES = 8
#: A cell's mark after the table's adjustment; a cell on too few images is never marked.
MARKS = {"above": " ✓", "below": " ✗", "level": "", "too few images": f" (n < {MIN_IMAGES})"}


def score_cell(score: dict[str, Any] | None) -> str:
    """``value (random) [low, high] mark``: the map's mean, the random maps' mean on the same images,
    the 95% interval of the paired difference in the better direction, and the mark."""
    if not score or score.get("value") is None:
        return "-"
    test = score["against"][score["reference"]]
    interval = "" if test["low"] is None else f" [{test['low']:+.2f}, {test['high']:+.2f}]"
    return f"{mean(score['value'])} ({mean(score['baseline'])}){interval}{MARKS[score['verdict']]}"


def images_row(records: list[dict[str, Any]]) -> list[str]:
    """Per score column, the images its cells count (``n``), as a range where the maps differ."""
    cells = []
    for family, metric in scored_metrics():
        counts = [record[family][metric.key]["images"] for record in records if metric.key in record.get(family, {})]
        cells.append("-" if not counts else _range(min(counts), max(counts)))
    return cells


def cascade_images(records: list[dict[str, Any]]) -> str:
    """The images the randomization cascade's tested Spearman counts (``n``), as a range where they differ."""
    counts = [record["randomization"]["sensitivity"]["images"] for record in records if record.get("randomization")]
    return "-" if not counts else _range(min(counts), max(counts))


def verdict_cells(record: dict[str, Any]) -> list[str]:
    """The verdict of every registered family (``not tested`` with ``too few images`` where that is why; randomization
    ``not supported (undecided)`` where its cascade was shown neither sensitive nor insensitive: FER2013's Grad-CAM,
    head-only Spearman 0.20 at adjusted p 0.069, read "not supported" beside Guided backprop's 0.98, and a grader took
    the two for the same failure)."""
    undecided = (record.get("randomization") or {}).get("verdict") == "undecided"
    return [_verdict_cell(record.get("verdicts", {}).get(family), undecided and family == "randomization")
            for family in FAMILIES]  # fmt: skip


def _verdict_cell(verdict: dict[str, str] | None, undecided: bool = False) -> str:
    if verdict is None:
        return "-"
    if verdict["verdict"] == "not tested" and verdict["why"].startswith("too few images"):
        return "not tested: too few images"
    if verdict["verdict"] == "not supported" and undecided:
        return "not supported (undecided)"
    return text(verdict["verdict"])


#: Families that must support a map before the report trusts it (to answer "where does the model look?").
#: The model-free maps every localisation and faithfulness cell is also tested against (not part of its
#: verdict, which is against random maps), as a sentence names them.
MODEL_FREE = {"edges": "the edge map", "centre": "the centred blob"}


def model_free_side(score: Mapping[str, Any], baseline: str) -> str | None:
    """For a cell that beats random maps, how it fares against the model-free map ``baseline``
    (:data:`MODEL_FREE`): ``better than``, ``worse than`` or ``not shown better than``; None where it does not
    beat random maps or was not tested against the model-free map."""
    test = (score.get("against") or {}).get(baseline)
    if score.get("verdict") != "above" or test is None:
        return None
    return {"above": "better than", "below": "worse than"}.get(test["mark"], "not shown better than")


def short_of_model_free(score: dict[str, Any], baseline: str) -> str | None:
    """:func:`model_free_side` where the cell does not beat the model-free map; None where it does."""
    side = model_free_side(score, baseline)
    return None if side == "better than" else side


def model_free_numbers(cell: Mapping[str, Any], baseline: str) -> str:
    """`` (0.226 vs 0.311; advantage +0.085 [+0.06, +0.12], adjusted p 0.00057, n = 64)``: the map's score, the
    model-free map's on the same images, the paired difference in the metric's better direction with its 95% interval,
    the adjusted p-value and n (a grader could not check "not shown better than" without them); nothing where the cell
    lacks them. The means and the difference to three places: at two, "0.23 vs 0.31; advantage +0.09" read as an
    error."""
    test = (cell.get("against") or {}).get(baseline) or {}
    numbers = (cell.get("value"), test.get("mean"), test.get("difference"), test.get("low"), test.get("high"))
    if any(not isinstance(number, int | float) for number in numbers):
        return ""
    value, theirs, difference, low, high = numbers
    adjusted = test.get("p_adjusted", test.get("p"))
    p = "" if adjusted is None else f", adjusted p {adjusted:.2g}"
    n = "" if test.get("n") is None else f", n = {test['n']}"
    return f" ({mean(value, 3)} vs {mean(theirs, 3)}; advantage {difference:+.3f} [{low:+.2f}, {high:+.2f}]{p}{n})"


def costly_images(sample: dict[str, Any]) -> int | None:
    """The costly methods' image count where evaluation.json's ``sample`` gave them fewer than the others."""
    costly, images = sample.get("costly_images", 0), sample.get("images", 0)
    return costly if costly < images else None


REQUIRED = ("faithfulness", "randomization")


#: The statuses :func:`trust_status` gives, in the order the report lists them.
TRUST_STATUSES = ("trusted", "not verified", "not trusted")


def trust_status(record: dict[str, Any]) -> str:
    """A layer record's status: ``trusted`` when every :data:`REQUIRED` family supports it and localisation
    does not refute it; ``not verified`` when nothing refutes it but a required family was not tested (a
    skipped check is no evidence either way); ``not trusted`` otherwise. Robustness is shown, not required:
    the Findings read class means over n images, which dilute a map's per-image instability (an assumption,
    not tested)."""
    verdicts = {family: (record.get("verdicts") or {}).get(family) or {} for family in FAMILIES}
    found = [verdicts[family].get("verdict", "not tested") for family in REQUIRED]
    if "not supported" in found or verdicts["localisation"].get("verdict") == "not supported":
        return "not trusted"
    return "trusted" if all(verdict == "supported" for verdict in found) else "not verified"


def trusted(record: dict[str, Any]) -> bool:
    """:func:`trust_status` is ``trusted``."""
    return trust_status(record) == "trusted"


def shared_verdicts(records: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per family, the verdict and reason that two or more ``records``, and more than half of those tested on it,
    share (of all records where none is tested): said once for all. FER2013's "robustness not supported (worse
    than the edge detector's map on max-sensitivity)" stood in 14 sentences, the shapes demo's faithfulness
    reason in 10 of 12; a map whose verdict differs keeps its own."""
    found = {}
    for family in FAMILIES:
        verdicts = [record.get("verdicts", {}).get(family) or {} for record in records]
        tested = [verdict for verdict in verdicts if verdict.get("verdict") != "not tested"] or verdicts
        counts = Counter(tuple(sorted(verdict.items())) for verdict in tested if verdict.get("verdict"))
        if counts:
            common, count = counts.most_common(1)[0]
            if count >= 2 and 2 * count > len(tested):
                found[family] = dict(common)
    return found


def shared_sentence(shared: Mapping[str, Mapping[str, str]], records: list[dict[str, Any]]) -> list[str]:
    """One sentence for the verdicts :func:`shared_verdicts` found among ``records``, each with how many maps share
    it and, where more maps have the verdict for other reasons, how many in all (the shapes demo's "faithfulness not
    supported for 10 of the 12 maps" read as the count of maps not supported, which was 11), or none."""
    said = []
    for family, found in shared.items():
        verdicts = [record.get("verdicts", {}).get(family) or {} for record in records]
        count = sum(verdict == found for verdict in verdicts)
        total = sum(verdict.get("verdict") == found["verdict"] for verdict in verdicts)
        maps = f"all {count} maps" if count == len(records) else f"{total} of the {len(records)} maps"
        others = f"{total - count} more below"
        reason = prose(found["why"]) if total == count else f"{count} of them: {prose(found['why'])}; {others}"
        rest = Counter(verdict.get("verdict", "not tested") for verdict in verdicts
                       if verdict.get("verdict") != found["verdict"])  # fmt: skip
        if rest:  # "not supported for 14 of the 15 maps" was read as one map supported: FER2013's 15th, LIME, untested
            which = "the other map" if sum(rest.values()) == 1 else f"the other {sum(rest.values())} maps"
            shown = ", ".join(text(verdict) if len(rest) == 1 else f"{many} {text(verdict)}"
                              for verdict, many in rest.items())  # fmt: skip
            reason += f"; {which}: {shown}"
        required = "" if family in (*REQUIRED, "localisation") else ": shown, not required"
        said.append(f"{text(family)} {text(found['verdict'])} for {maps} ({reason}){required}")
    return [f"{'; '.join(said)}; these reasons are not said again below."] if said else []


def overall(label: str, record: dict[str, Any], shared: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """One sentence by the rule of :func:`trust_status`, the Findings' rule: the families that decide are
    named, each with why (``as above`` where its verdict is one of ``shared``, said once for several maps); the
    others follow as supporting, as not supporting with why (a ✓ in a family the verdict still calls not
    supported, e.g. robustness that is stable for free, needs its reason), or as shown but not required; a
    family whose verdict is one of ``shared`` is left out unless it decides or, being required, supports."""
    verdicts = {family: record.get("verdicts", {}).get(family) or {"verdict": "not tested", "why": "not evaluated"}
                for family in FAMILIES}  # fmt: skip
    status = trust_status(record)
    refuting = "not supported" if status == "not trusted" else "not tested"
    deciding = [family for family in REQUIRED if verdicts[family]["verdict"] == refuting]
    deciding += ["localisation"] if verdicts["localisation"]["verdict"] == "not supported" else []
    supported = [family for family, found in verdicts.items() if found["verdict"] == "supported"]
    unsaid = [family for family in verdicts if verdicts[family] != (shared or {}).get(family)]
    if deciding:
        driven = ", ".join(_decides(family, verdicts[family], family not in unsaid) for family in deciding)
        backed = [family for family in supported if family in unsaid]
        backed_by = f"; supported by {_names(backed)}" if backed else ""
        refuted = "".join(f"; {text(family)} not supported ({prose(verdicts[family]['why'])})" for family in unsaid
                          if verdicts[family]["verdict"] == "not supported" and family not in deciding)  # fmt: skip
        return f"{label}: {status}, driven by {driven}{backed_by}{refuted}."
    aside = [family for family in unsaid if family not in supported and family != "localisation"]
    shown = "".join(f"; {text(family)} {text(verdicts[family]['verdict'])} ({prose(verdicts[family]['why'])}): shown, "
                    "not required" for family in aside)  # fmt: skip
    named = [family for family in supported if family in unsaid or family in REQUIRED]
    return f"{label}: {status}, supported by {_names(named)}{shown}."


#: A number in a sentence (not a digit of a name such as ``layer2.relu2``): what varies between maps whose
#: sentences :func:`grouped` says once.
NUMBER = re.compile(r"(?<![\w.`-])[-+]?\d+(?:\.\d+)?(?![\w`])")
#: Up to this many numbers may vary within a group of sentences said once (each given for every map, "respectively");
#: with more, each map keeps its own sentence.
MOST_VARYING = 4


def grouped(sentences: list[tuple[str, str]]) -> list[str]:
    """``(label, sentence)`` pairs, each sentence opening with ``label: ``, with the sentences that differ only in
    their numbers said once for all their maps, in order of first appearance, each number that varies given in its
    place for every map in their order: "keeps Spearman 0.97, 0.64 and 0.83 respectively" (FER2013: "with only the
    head re-initialised its map keeps Spearman 0.98, above 0.5: it shows what the lower layers respond to, ..." stood
    for five maps; the numbers given after the sentence "in that order", named *a*, *b* beside each map's name, or
    replaced by "(beside its name)", graders found unreadable or read as template placeholders left in the text)."""
    groups: dict[tuple[str, ...], list[tuple[str, list[str]]]] = {}
    for label, sentence in sentences:
        body = sentence.removeprefix(f"{label}: ")
        groups.setdefault(tuple(NUMBER.split(body)), []).append((label, NUMBER.findall(body)))
    said = []
    for pieces, members in groups.items():
        columns = list(zip(*(numbers for _, numbers in members), strict=True))
        varying = [index for index, column in enumerate(columns) if len(set(column)) > 1]
        if len(members) == 1 or len(varying) > MOST_VARYING:
            said += [f"{label}: {_filled(pieces, numbers)}" for label, numbers in members]
            continue
        numbers = [f"{_joined(list(column))} respectively" if index in varying else column[0]
                   for index, column in enumerate(columns)]  # fmt: skip
        said.append(f"{_joined([label for label, _ in members])}: {_filled(pieces, numbers)}")
    return said


def _filled(pieces: Sequence[str], numbers: Sequence[str]) -> str:
    """The text between a sentence's numbers (``NUMBER.split``) with ``numbers`` put back between them."""
    return "".join(piece + number for piece, number in zip(pieces, [*numbers, ""], strict=True))


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _decides(family: str, verdict: Mapping[str, str], said_above: bool) -> str:
    """``faithfulness (not supported: why)``, or ``(not supported, as above)`` where the reason was said once."""
    why = ", as above" if said_above else f": {prose(verdict['why'])}"
    return f"{text(family)} ({text(verdict['verdict'])}{why})"


def _names(families: list[str]) -> str:
    return ", ".join(text(family) for family in families)


def _range(low: int, high: int) -> str:
    return f"n = {low}" if low == high else f"n = {low}-{high}"
