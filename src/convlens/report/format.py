"""How the report writes numbers, sizes and epochs: one place, so every section says them alike."""

from __future__ import annotations


def is_number(item: object) -> bool:
    """An int or float read from a record, not a bool (``True`` is an int to Python, never a number to a report)."""
    return isinstance(item, int | float) and not isinstance(item, bool)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def value(number: float | None) -> str:
    return "-" if number is None else f"{number:.4g}"


def mean(number: float | None, places: int = 2) -> str:
    """A mean score to ``places`` places, ``-`` for none, never ``-0.00`` (a random map's ROAD of -0.001 printed so, as
    if its sign meant something; an interval's bound keeps its sign, which says on which side of 0 it ends)."""
    return "-" if number is None else f"{round(number, places) + 0.0:.{places}f}"


def number(item: object) -> str:
    """Floats to three significant digits, lists as comma-separated items, anything else as it is."""
    if isinstance(item, list | tuple):
        return "[" + ", ".join(number(element) for element in item) + "]"
    return f"{item:.3g}" if isinstance(item, float) else str(item)


def sizes(counts: dict[str, int]) -> str:
    return " / ".join(f"{counts[split]:,} {split}" for split in ("train", "val", "test") if split in counts)


def pixels(size: int) -> str:
    return f"{size}x{size} px"


def split_result(result: dict[str, float] | None) -> str:
    return f"{percent(result['acc'])} (loss {value(result['loss'])})" if result else "not evaluated"


def epoch(index: int | None) -> str:
    """0-based epoch index as the 1-based number the report shows."""
    return "-" if index is None else str(index + 1)


def p_value(p: float) -> str:
    """A p-value as a sentence gives it: '< 0.001' below that, else '= 0.012'."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"
