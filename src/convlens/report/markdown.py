"""Markdown building blocks shared by the reports and the benchmark summaries.

Text that comes from a run directory or a dataset (class names, experiment names, paths) is
untrusted: :func:`text` escapes it so that it shows as written in report.md and report.html and
can never become markup (a class called ``<script>`` stays text), and keeps it on one line, since a
line break would let it start a heading or a list of its own (a class name ending in ``\\n# Hacked``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

#: Characters that could start markup inside a line: backslash, code, emphasis, links, table cells;
#: an underscore only at a word boundary (``demo_faces`` stays as it is, ``_x_`` is escaped).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
#: Every character that ends a line for markdown or for Python's ``splitlines``.
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")


def text(value: Any) -> str:
    """``value`` as literal text in markdown: ``<>&`` HTML-escaped, markup characters backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(one_line(value), quote=False))


def prose(value: Any) -> str:
    """A stage's recorded reason or note as markdown: its backtick-quoted spans (a command, a layer) as
    :func:`code`, the rest as :func:`text`; all of it :func:`text` where the backticks do not pair up."""
    pieces = one_line(value).split("`")
    if len(pieces) % 2 == 0:
        return text(value)
    return "".join(code(piece) if index % 2 else text(piece) for index, piece in enumerate(pieces) if piece)


def code(value: Any) -> str:
    """``value`` in an inline code span (markdown escapes HTML there itself; backticks become quotes)."""
    return "`" + one_line(value).replace("`", "'") + "`"


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A pipe table; cells are used as given (escape untrusted ones with :func:`text`), pipes escaped."""
    lines = ["| " + " | ".join(_cell(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return _UNESCAPED_PIPE.sub(r"\\|", one_line(value))


def one_line(value: Any) -> str:
    """``value`` as text with every line break made a space."""
    return _LINE_BREAKS.sub(" ", str(value))


def folded(summary: str, body: str) -> str:
    """``body`` inside a closed ``<details>`` block titled ``summary`` (HTML and GitHub render its markdown)."""
    return f'<details markdown="1">\n<summary>{summary}</summary>\n\n{body}\n\n</details>'
