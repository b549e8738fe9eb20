"""The package's layers, read from the code: every import of ``src/convlens`` points down (or within its
layer), and no stage imports another stage. docs/architecture.md draws the same order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "convlens"

#: Lowest first. A module may import from its own layer and the layers below it, never above.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("foundations", frozenset({"__init__", "text", "untrusted", "atomic", "hardware", "forked"})),
    ("provenance", frozenset({"provenance"})),
    ("data and models", frozenset({"data", "models"})),
    (
        "run directory, train config, registries",
        frozenset({"rundir", "run_files", "lineage", "config", "registry", "evaluation_registry"}),
    ),
    ("generator prior (library)", frozenset({"generator"})),
    ("explanation methods", frozenset({"explain"})),
    ("figures", frozenset({"figures"})),
    ("stage kernel", frozenset({"stage"})),
    ("stages", frozenset({"training", "generate", "visualize", "evaluate", "report"})),
    ("orchestration", frozenset({"pipeline", "sweep", "compare"})),
)
STAGES = dict(LAYERS)["stages"]


def unit(path: Path) -> str:
    """The top-level module or package of ``src/convlens`` a file belongs to."""
    parts = path.relative_to(SOURCE).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported_units(tree: ast.AST) -> set[str]:
    """The top-level convlens units a module's source imports (anywhere in it, lazily or not)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "convlens" else [f"convlens.{a.name}" for a in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("convlens.")}
    return found


def layer_of(name: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"src/convlens/{name} is in no layer of tests/test_layers.py: place it there")


def arrows() -> list[tuple[str, str, str]]:
    """(file, its unit, imported unit) for every import between two different units."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        source = unit(path)
        for target in imported_units(ast.parse(path.read_text())) - {source}:
            found.append((str(path.relative_to(SOURCE)), source, target))
    return found


def test_every_unit_has_a_layer() -> None:
    for path in SOURCE.rglob("*.py"):
        layer_of(unit(path))


def test_no_import_points_up() -> None:
    upward = [
        f"{file} ({LAYERS[layer_of(source)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for file, source, target in arrows()
        if layer_of(target) > layer_of(source)
    ]
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_no_stage_imports_another() -> None:
    crossing = [f"{file} imports stage {target}" for file, source, target in arrows() if {source, target} <= STAGES]
    assert not crossing, "stages importing each other (share code through a lower layer):\n" + "\n".join(crossing)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from convlens.explain.cam import grad_cam", {"explain"}),
        ("from convlens import atomic, provenance", {"atomic", "provenance"}),
        ("import convlens.report.build as b", {"report"}),
        ("def f():\n    from convlens.visualize import stage", {"visualize"}),
        ("import torch\nfrom . import sibling", set()),
    ],
)
def test_imports_are_read_as_written(source: str, expected: set[str]) -> None:
    """The walk the two tests rely on sees lazy imports and ``from convlens import x`` too."""
    assert imported_units(ast.parse(source)) == expected
