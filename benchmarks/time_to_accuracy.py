"""Time to accuracy of the real experiments, through the real training stage
(``convlens.training.run.train`` on the composed experiment config, plus overrides).

On a GPU: ``cifar10_resnet18`` and ``fer2013_cnn``. Without one: ``fer2013_cnn`` on the CPU for as many
epochs as ``--time-budget`` allows. Each run directory gets ``curve.json`` (per epoch: wall time since
the start of training, validation accuracy and loss, learning rate, training images/s); this script
adds the best checkpoint's test accuracy and the time at which validation accuracy first reached the
experiment's target. ``--quick`` trains one batch of one epoch: a smoke test that measures nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import arguments
import paths
import records
import torch
from omegaconf import DictConfig, open_dict

from convlens.provenance import portable_path

#: Test-accuracy goals of the issue; validation accuracy reaching them is what "time to accuracy" times.
TARGETS = {"cifar10_resnet18": 0.94, "fer2013_cnn": 0.72, "fer2013_cnn_cpu": 0.6}
DATA_FILES = {"cifar10_resnet18": "cifar10.npz", "fer2013_cnn": "fer2013.csv.xz", "fer2013_cnn_cpu": "fer2013.csv.xz"}
#: Built-in data of the same shape when the real files are absent (speeds comparable, accuracies not).
SYNTHETIC = {
    "cifar10_resnet18": {"kind": "shapes"},
    "fer2013_cnn": {"kind": "faces"},
    "fer2013_cnn_cpu": {"kind": "faces"},
}


def compose(experiment: str, overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from convlens.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(paths.ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=[f"experiment={experiment}", *overrides])


def has_data(data_dir: Path, experiment: str) -> bool:
    name = DATA_FILES[experiment]
    return (data_dir / name).is_file() or (data_dir / name.removesuffix(".xz")).is_file()


def run_experiment(experiment: str, args: Any, output_root: Path) -> dict[str, Any]:
    from convlens.training.run import train

    run_dir = output_root / experiment / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    overrides = [
        f"data.data_dir={portable_path(args.data_dir)}",
        f"paths.cache_dir={args.cache_dir}",
        f"paths.output_dir={portable_path(run_dir)}",
        "trainer.enable_progress_bar=false",
        *args.override,
    ]
    if args.epochs is not None:
        overrides.append(f"trainer.max_epochs={args.epochs}")
    if args.quick:
        overrides += [
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.batch_size=16",
            "data.eval_batch_size=32",
        ]
    cfg = compose(experiment, overrides)
    real = has_data(args.data_dir, experiment)
    with open_dict(cfg):
        if not real:
            size = 64 if args.quick else 5000
            cfg.data.source = {
                "_target_": "convlens.data.synthetic.SyntheticSource",
                **SYNTHETIC[experiment],
                "train_size": size,
                "val_size": size // 5,
                "test_size": size // 5,
                "seed": 0,
            }
        cfg.callbacks.curve = {
            "_target_": "curve.EpochCurve",
            "path": str(run_dir / "curve.json"),
            "time_budget_s": args.time_budget,
        }
    origin = (
        f"real: {portable_path(args.data_dir / DATA_FILES[experiment])}"
        if real
        else (
            f"synthetic: {DATA_FILES[experiment]} not in {portable_path(args.data_dir)}, "
            f"built-in '{SYNTHETIC[experiment]['kind']}' data of the same shape (speeds comparable, accuracies not)"
        )
    )
    print(f"{experiment}: {origin}")
    metrics = train(cfg)
    curve_path = run_dir / "curve.json"
    epochs = json.loads(curve_path.read_text())["epochs"] if curve_path.exists() else []
    target = TARGETS[experiment]
    reached = next((e for e in epochs if e["val_acc"] is not None and e["val_acc"] >= target), None)
    rates = [e["train_images_per_s"] for e in epochs if e["train_images_per_s"]]
    return {
        "experiment": experiment,
        "data": origin,
        "run_dir": portable_path(run_dir),
        "precision": str(cfg.trainer.precision),
        "resolved_precision": metrics["precision"],
        "precision_probe": metrics["precision_probe"],
        "max_epochs": cfg.trainer.max_epochs,
        "epochs_trained": metrics["epochs"],
        "time_budget_s": args.time_budget,
        "train_seconds": metrics["train_seconds"],
        "best_epoch": metrics["best_epoch"],
        "val_acc": metrics["val"]["acc"],
        "test_acc": metrics.get("test", {}).get("acc"),
        "target_acc": target,
        "seconds_to_target_val_acc": reached["seconds"] if reached else None,
        "train_images_per_s_median": sorted(rates)[len(rates) // 2] if rates else None,
        "curve": epochs,
    }


def show(run: dict[str, Any], device: torch.device) -> None:
    print(f"\nTime to accuracy on {device}")
    columns = ["experiment", "epochs", "train s", "best val acc", "test acc", "target", "s to target (val)", "images/s"]
    keys = ["experiment", "epochs_trained", "train_seconds", "val_acc", "test_acc", "target_acc",
            "seconds_to_target_val_acc", "train_images_per_s_median"]  # fmt: skip
    print(records.table(columns, [[e[key] for key in keys] for e in run["experiments"]]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    p.add_argument(
        "--experiments",
        nargs="+",
        choices=sorted(TARGETS),
        default=None,
        help="default: both on a GPU, fer2013_cnn on the CPU",
    )
    p.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs (default: the experiment's)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds of training per experiment (default: 1800 on the CPU, none on a GPU); "
        "evaluating the best checkpoint comes on top",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "convlens-bench-cache",
        help="where the decoded FER2013 cache goes (outside the project: data never lands in it)",
    )
    p.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="run directories (default outputs/benchmarks; with --quick a temporary folder, removed afterwards)",
    )
    p.add_argument("--override", action="append", default=[], help="extra Hydra override, repeatable")
    args = p.parse_args(argv)
    device = arguments.configure(args)
    if device.type == "cpu":
        args.override.append("trainer.accelerator=cpu")
    experiments = args.experiments or (sorted(TARGETS) if device.type == "cuda" else ["fer2013_cnn"])
    if args.time_budget is None and device.type == "cpu" and not args.quick:
        args.time_budget = 1800.0
    config = {"experiments": experiments, "epochs": args.epochs, "time_budget_s": args.time_budget,
              "overrides": args.override}  # fmt: skip

    def measure(output_root: Path) -> dict[str, Any]:
        return {"config": config, "experiments": [run_experiment(e, args, output_root) for e in experiments]}

    if args.outputs is not None or not args.quick:
        output_root = args.outputs or paths.ROOT / "outputs" / "benchmarks"
        return records.record(args, "time_to_accuracy", device, lambda: measure(output_root), show)
    # A quick run's run directories are a smoke test's by-products (74 MB each): removed once measured.
    with tempfile.TemporaryDirectory(prefix="convlens-tta-") as folder:
        return records.record(args, "time_to_accuracy", device, lambda: measure(Path(folder)), show)


if __name__ == "__main__":
    main()
