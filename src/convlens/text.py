"""Names derived from free text (class names, layer names) that are safe in file names and keys."""

from __future__ import annotations

import re


def slug(text: str) -> str:
    """``'Horizontal stripes'`` -> ``'horizontal_stripes'``, ``'layer4.1'`` -> ``'layer4_1'``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"
