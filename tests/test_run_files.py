"""Reliability, round two (issue 25, points 3, 5 and 7): what the report reads from a run directory.

Every file is read by its checked reader (:mod:`convlens.run_files`): a damaged one is refused naming
the file and the command that writes it again; no file is followed out of the run through a symlink;
and text from the run can neither inject markdown nor have its paths mangled."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import compose_config, train_tiny

from convlens import provenance
from convlens.report import build_report, report
from convlens.report.build import portable
from convlens.report.run_data import read_run
from convlens.report.schema import ReportConfig
from convlens.rundir import RunDirError
from convlens.untrusted import UntrustedInputError
from convlens.visualize import visualize_run
from convlens.visualize.schema import register_schema


@pytest.fixture(scope="module")
def visualized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny demo_faces run with saliency maps, which the tests copy and tamper with."""
    run_dir = train_tiny(tmp_path_factory.mktemp("run_files") / "run", "demo_faces")
    register_schema()
    visualize_run(run_dir, compose_config("visualize", "visualize", f"run={run_dir}", "methods=[saliency]",
                                          "selection.wrong_per_class=0", "workers=1"))  # fmt: skip
    return run_dir


def _copy(run: Path, tmp_path: Path, experiment: str = "demo_faces", name: str = "copy") -> Path:
    copy = tmp_path / "outputs" / experiment / name
    shutil.copytree(run, copy, symlinks=True, ignore=shutil.ignore_patterns("checkpoints"))
    return copy


# --- 3. No symlink leaves the run ------------------------------------------------------------------------------


def test_a_confusion_matrix_linked_out_of_the_run_is_refused(visualized: Path, tmp_path: Path) -> None:
    copy = _copy(visualized, tmp_path)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not for the report")
    (copy / "confusion_matrix.png").unlink()
    (copy / "confusion_matrix.png").symlink_to(outside)
    with pytest.raises(UntrustedInputError, match=r"confusion_matrix.png points outside"):
        build_report(copy, tmp_path / "reports")
    assert not list((tmp_path / "reports").rglob("*.png")), "a file was copied into the report"


def test_a_visualizations_folder_linked_out_of_the_run_is_refused(visualized: Path, tmp_path: Path) -> None:
    copy = _copy(visualized, tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.move(copy / "visualizations", outside)
    (copy / "visualizations").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UntrustedInputError, match=r"visualizations.* points outside"):
        build_report(copy, tmp_path / "reports")
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").rglob("*.png"))


# --- 5. Readers that never trace back ------------------------------------------------------------------------

DAMAGED = {
    "truncated manifest": ("visualizations/manifest.json", '{"entries": [', "make visualize RUN="),
    "list manifest": ("visualizations/manifest.json", "[]", "make visualize RUN="),
    "empty metrics": ("metrics.json", "{}", "make train"),
    "garbage confusion": ("confusion_matrix.csv", "x,y\n1,2,3,4\nz", "make train"),
    "class names of the wrong length": ("class_names.json", '["a", "b"]', "make train"),
    "truncated provenance": ("provenance.json", '{"git": {', "make train"),
}


@pytest.mark.parametrize("case", DAMAGED, ids=list(DAMAGED))
def test_a_damaged_file_is_named_with_the_command_that_rewrites_it(visualized: Path, tmp_path: Path, case) -> None:
    name, content, command = DAMAGED[case]
    copy = _copy(visualized, tmp_path)
    (copy / name).write_text(content)
    with pytest.raises(ValueError) as refused:
        build_report(copy, tmp_path / "reports")
    message = str(refused.value)
    assert str(copy / name) in message and command in message, message
    assert type(refused.value).__name__ not in ("JSONDecodeError", "KeyError", "IndexError")


#: A field of the wrong type in a file that parses: each refused naming the file, as the reader checks it.
MISTYPED = {
    "manifest images not a list": (
        "visualizations/manifest.json",
        ("entries", 0, "images"),
        "x",
        "make visualize RUN=",
    ),
    "manifest layer a number": ("visualizations/manifest.json", ("entries", 0, "layer"), 5, "make visualize RUN="),
    "manifest notes a number": ("visualizations/manifest.json", ("methods", "saliency", "notes"), 5, "make visualize"),
    "manifest comparison a number": ("visualizations/manifest.json", ("comparison",), 5, "make visualize RUN="),
    "metrics best_epoch a list": ("metrics.json", ("best_epoch",), [1], "make train"),
    "provenance git a number": ("provenance.json", ("git",), 5, "make train"),
    "provenance packages a list": ("provenance.json", ("packages",), [1], "make train"),
    "config model a string": ("config.yaml", ("model",), "x", "make train"),
    "config optimizer a number": ("config.yaml", ("optimizer",), 5, "make train"),
    "config image size a string": ("config.yaml", ("data", "image_size"), "x", "make train"),
    "config trainer a list": ("config.yaml", ("trainer",), [1], "make train"),
}


@pytest.mark.parametrize("case", MISTYPED, ids=list(MISTYPED))
def test_a_field_of_the_wrong_type_is_named_with_its_file(visualized: Path, tmp_path: Path, case) -> None:
    name, keys, value, command = MISTYPED[case]
    copy = _copy(visualized, tmp_path)
    path = copy / name
    record = yaml.safe_load(path.read_text()) if name.endswith(".yaml") else json.loads(path.read_text())
    node = record
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    path.write_text(yaml.safe_dump(record) if name.endswith(".yaml") else json.dumps(record))
    with pytest.raises(ValueError) as refused:
        build_report(copy, tmp_path / "reports")
    message = str(refused.value)
    assert str(path) in message and command in message, message


def test_one_broken_run_does_not_stop_the_report_of_another(visualized: Path, tmp_path: Path) -> None:
    good, bad = _copy(visualized, tmp_path, "good_runs", "good"), _copy(visualized, tmp_path, "bad_runs", "bad")
    (bad / "metrics.json").write_text("{}")
    for run in (good, bad):
        (run.parent / "latest").symlink_to(run.name, target_is_directory=True)
    settings = ReportConfig(outputs_dir=str(tmp_path / "outputs"), reports_dir=str(tmp_path / "reports"))
    with pytest.raises(RunDirError, match=r"1 of 2 runs failed:\nbad_runs/bad: .*metrics.json"):
        report(settings)
    assert (tmp_path / "reports" / "demo_faces" / "good" / "report.md").is_file()


# --- 7. The smaller cases --------------------------------------------------------------------------------------


def test_maps_of_validation_images_are_called_so(visualized: Path, tmp_path: Path) -> None:
    copy = _copy(visualized, tmp_path)
    manifest = json.loads((copy / "visualizations" / "manifest.json").read_text())
    (copy / "visualizations" / "manifest.json").write_text(json.dumps(manifest | {"split": "val"}))
    text = (build_report(copy, tmp_path / "reports") / "report.md").read_text()
    saliency = text.split("### Saliency (vanilla gradient)")[1].split("\n## ")[0]
    assert "validation images" in saliency and "test image" not in saliency


def test_a_class_name_with_a_newline_injects_no_heading(visualized: Path, tmp_path: Path) -> None:
    copy = _copy(visualized, tmp_path)
    names = json.loads((copy / "class_names.json").read_text())
    (copy / "class_names.json").write_text(json.dumps([names[0] + "\n# Injected\r\n- item", *names[1:]]))
    text = (build_report(copy, tmp_path / "reports") / "report.md").read_text()
    assert "Injected" in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith(("# Injected", "- item"))]


def test_a_short_home_does_not_mangle_paths(visualized: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/d")
    shown = portable("outputs/demo_faces/x, /d/data and /dd", read_run(visualized))
    assert shown == "outputs/demo_faces/x, ~/data and /dd"


def test_a_read_only_run_gets_its_report_and_a_warning(
    visualized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copy = _copy(visualized, tmp_path)
    before = (copy / "provenance.json").read_text()

    def refuse(run_dir: Path, info: dict) -> None:  # what a read-only folder answers (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied", str(run_dir / provenance.FILE_NAME))

    monkeypatch.setattr(provenance, "write", refuse)
    with caplog.at_level(logging.WARNING, logger="convlens.provenance"):
        folder = build_report(copy, tmp_path / "reports")
    assert (folder / "report.md").is_file() and (copy / "provenance.json").read_text() == before
    assert "the report stage's time is not recorded" in caplog.text
