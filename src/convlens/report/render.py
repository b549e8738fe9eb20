"""report.md -> report.html with the ``markdown`` package: one page, inline style, relative image links.

The HTML is made from the very same markdown, so both show the same numbers and figures; the page
needs nothing beyond the report folder (no scripts, fonts or stylesheets from the network).
"""

from __future__ import annotations

import html

import markdown

#: ``toc`` gives every heading the id the report's table of contents links to.
EXTENSIONS = ("tables", "fenced_code", "md_in_html", "sane_lists", "toc")
STYLE = """
body { font-family: system-ui, sans-serif; line-height: 1.45; margin: 0; color: #1f2328; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem 2rem 4rem; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
.table-scroll { overflow-x: auto; max-width: 100%; margin: 0.75rem 0; }
table { border-collapse: collapse; }
thead:not(:has(th:not(:empty))) { display: none; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; background: #f6f8fa; }
pre { padding: 0.75rem; overflow-x: auto; }
blockquote { border-left: 4px solid #d4a72c; margin: 0.75rem 0; padding: 0.25rem 1rem; background: #fff8c5; }
details { margin: 0.75rem 0; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2.5rem; }
"""


def to_html(text: str, title: str) -> str:
    """A complete HTML document for the markdown ``text``."""
    body = scrolling_tables(markdown.markdown(text, extensions=list(EXTENSIONS), output_format="html"))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def scrolling_tables(body: str) -> str:
    """Each table in a horizontally scrolling box: a wide one (the trust table has up to 15 columns)
    scrolls inside the page's column instead of running past it."""
    return body.replace("<table>", '<div class="table-scroll">\n<table>').replace("</table>", "</table>\n</div>")
