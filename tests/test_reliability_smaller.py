"""Reliability, round two (issue 25, point 7): the smaller cases, each on files the test builds itself."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, compose_config
from datafiles import FER_ROWS, write_fer_csv

from convlens.config import ConfigError
from convlens.data import fer2013
from convlens.data.fer2013 import read_csv
from convlens.report.schema import register_schema
from convlens.rundir import RunDirError, check_run_dir, point_latest
from convlens.training.run import train
from convlens.untrusted import UntrustedInputError, load_checkpoint


class Pickled:
    """Any class: torch's weights-only loader refuses it."""


def test_a_fer_line_of_200k_values_names_the_file_and_line(tmp_path: Path) -> None:
    huge = "3," + " ".join(["1"] * 200_000) + ",Training\n"
    path = write_fer_csv(tmp_path / "fer2013.csv", [FER_ROWS[0], huge, *FER_ROWS[1:]])
    with pytest.raises(ValueError, match=rf"{path} line 3: not a row of emotion,pixels,Usage"):
        read_csv(path)


def test_an_xz_bomb_is_refused_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap counts decompressed bytes as they stream (here lowered to 100 kB; FER2013's is ~576 MiB)."""
    monkeypatch.setattr(fer2013, "MAX_CSV_BYTES", 100_000)
    path = write_fer_csv(tmp_path / "fer2013.csv.xz", FER_ROWS * 20)  # ~800 kB of text in a few kB of xz
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"fer2013.csv.xz holds more than 100,000 bytes of text \(MAX_CSV_BYTES"):
        read_csv(path)
    assert len(read_csv(write_fer_csv(tmp_path / "small.csv.xz", FER_ROWS))["train"].labels) == 3


def test_the_pickled_checkpoint_refusal_does_not_invite_the_unsafe_fix(tmp_path: Path) -> None:
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "extra": Pickled()}, path)
    with pytest.raises(UntrustedInputError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "Unsupported global" in message and "Pickled" in message, message
    for advice in ("weights_only", "still be loaded", "likely succeed", "add_safe_globals", "\x1b["):
        assert advice not in message, message


def test_random_bytes_as_a_checkpoint_are_called_corrupted_not_code(tmp_path: Path) -> None:
    """Bytes that are no pickle at all (a damaged download, another file renamed) fail inside the unpickler
    in many ways (unknown opcodes, IndexError, KeyError): each is 'corrupted', none a raw error or 'code'."""
    path = tmp_path / "random.ckpt"
    generator = np.random.default_rng(0)
    for _ in range(100):
        path.write_bytes(generator.bytes(4096))
        with pytest.raises(UntrustedInputError, match=r"random\.ckpt is (truncated or )?corrupted"):
            load_checkpoint(path)


def test_a_run_folder_with_a_space_is_refused_before_training(compose_train, tmp_path: Path) -> None:
    run_dir = tmp_path / "my run"
    cfg = compose_train("experiment=demo_faces", f"paths.output_dir='{run_dir}'")
    with pytest.raises(ConfigError, match=r"paths.output_dir='my run' cannot name a folder"):
        train(cfg)
    assert not run_dir.exists()


@pytest.mark.parametrize("target", ["generate", "visualize", "evaluate", "report"])
def test_make_passes_any_run_path_to_hydra(target: str) -> None:
    """`make <target> RUN=...` with é, a space and a quote: the composed config holds the path as given."""
    run = "outputs/demo_faces/été l'an 2"
    command = ["make", "-s", "-n", "-o", ".venv/.installed", target, f"RUN={run}"]
    printed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    arguments = shlex.split(printed.splitlines()[-1])
    overrides = arguments[arguments.index(f"scripts/{target}.py") + 1 :]
    register_schema()
    assert compose_config("report", "report", *overrides).run == run


def test_report_multirun_is_refused_without_a_multirun_folder(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "scripts" / "report.py"), "-m", f"outputs_dir={tmp_path / 'outputs'}"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0 and "-m/--multirun is refused" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "multirun").exists()


def test_a_run_folder_named_latest_is_refused(tmp_path: Path) -> None:
    """A copied run in a real folder named ``latest`` would be reported into reports/<experiment>/latest,
    the link to another run's report, and overwrite that report."""
    copied = tmp_path / "outputs" / "demo_faces" / "latest"
    copied.mkdir(parents=True)
    (copied / "config.yaml").write_text("model: {}\n")
    with pytest.raises(RunDirError, match=r"run folder named 'latest'.*rename the folder"):
        check_run_dir(copied)


def test_a_real_folder_where_the_latest_link_goes_is_kept_and_named(tmp_path: Path) -> None:
    """Pointing ``latest`` at a new run never replaces a real folder of that name, and leaves no temporary link."""
    (tmp_path / "2026-01-01_00-00-00").mkdir()
    (tmp_path / "latest").mkdir()
    (tmp_path / "latest" / "report.md").write_text("a user's file\n")
    with pytest.raises(FileExistsError, match=r"latest is a real folder.*move it away or rename it"):
        point_latest(tmp_path / "2026-01-01_00-00-00")
    assert (tmp_path / "latest" / "report.md").read_text() == "a user's file\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2026-01-01_00-00-00", "latest"]
    (tmp_path / "latest" / "report.md").unlink()
    (tmp_path / "latest").rmdir()
    point_latest(tmp_path / "2026-01-01_00-00-00")
    assert os.readlink(tmp_path / "latest") == "2026-01-01_00-00-00"
