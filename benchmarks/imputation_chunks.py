"""ROAD's noisy linear imputation on a CPU: all systems in one batch against cache-sized chunks
(``convlens.evaluate.imputation.CPU_CHUNK_BYTES``), on the work one ROAD call of the demo_shapes
evaluation does (65 px RGB images; each of a map's 20/50/80% most and least relevant pixels imputed).

The maps are of three kinds, as the stage meets them: uniform random (scattered holes, a random
baseline draw), a smooth random field (blob-shaped holes, as a CAM leaves) and a centred Gaussian
(one large hole, the centre baseline). Every chunk size, the one-batch solve included, runs once per
round, in an order that alternates between rounds; a chunk size's speed-up is the median over the
rounds of the one-batch time divided by its own, with the range. The imputed values must agree with
the one-batch solve to within the solver's tolerance (``max_difference``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from typing import Any

import arguments
import records
import torch
import torch.nn.functional as F

from convlens.evaluate import imputation
from convlens.evaluate.faithfulness import pixel_ranks

#: The solver's own chunk size, and others around it (bytes of one vector of a chunk's systems).
CHUNK_BYTES = (256 * 1024, imputation.CPU_CHUNK_BYTES, 2 * 1024 * 1024, 8 * 1024 * 1024)
SHARES = (0.2, 0.5, 0.8)


def workload(images: int, side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 3, side, side) smooth images and (M, side, side) removed pixels: per image, per map kind,
    its MoRF and LeRF masks at each of :data:`SHARES` (as ``faithfulness.road_images`` builds them)."""
    generator = torch.Generator().manual_seed(seed)
    pictures = F.avg_pool2d(torch.randn(images, 3, side + 4, side + 4, generator=generator), 5, 1)
    coarse = torch.rand(images, 1, 5, 5, generator=generator)
    rows = torch.linspace(-1, 1, side)
    centre = torch.exp(-(rows[:, None] ** 2 + rows[None, :] ** 2) / 0.3).expand(images, side, side)
    maps = {
        "random": torch.rand(images, side, side, generator=generator),
        "smooth field": F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)[:, 0],
        "centre": centre,
    }
    pixels = side * side
    counts = (torch.tensor(SHARES) * pixels).round()[None, :, None]
    masks, copies = [], []
    for values in maps.values():
        ranks = pixel_ranks(values, torch.Generator().manual_seed(seed))
        removed = torch.cat([ranks[:, None] < counts, ranks[:, None] >= pixels - counts], dim=1)
        masks.append(removed.reshape(-1, side, side))
        copies.append(pictures.repeat_interleave(removed.shape[1], dim=0))
    return torch.cat(copies), torch.cat(masks)


def solve(images: torch.Tensor, removed: torch.Tensor, chunk_bytes: int) -> tuple[torch.Tensor, float]:
    """The imputed images with chunks of ``chunk_bytes``, and the seconds it took."""
    default = imputation.CPU_CHUNK_BYTES
    imputation.CPU_CHUNK_BYTES = chunk_bytes
    try:
        started = time.perf_counter()
        filled = imputation.noisy_linear_imputation(images, removed, 0.0, torch.Generator().manual_seed(0))
        return filled, time.perf_counter() - started
    finally:
        imputation.CPU_CHUNK_BYTES = default


def measure(args: argparse.Namespace) -> dict[str, Any]:
    images, removed = workload(args.images, args.side)
    one_batch = images[0].nbytes * len(images)  # one chunk holding every system: the solve before chunks
    variants = (one_batch, *CHUNK_BYTES)
    reference, _ = solve(images, removed, one_batch)  # also the warm-up
    seconds: dict[int, list[float]] = {size: [] for size in variants}
    difference = dict.fromkeys(variants, 0.0)
    for round_index in range(args.rounds):
        for size in variants if round_index % 2 == 0 else tuple(reversed(variants)):
            filled, elapsed = solve(images, removed, size)
            seconds[size].append(elapsed)
            difference[size] = max(difference[size], float((filled - reference).abs().amax()))
    rows = []
    for size in variants:
        ratios = [base / own for base, own in zip(seconds[one_batch], seconds[size], strict=True)]
        rows.append({
            "chunk_bytes": None if size == one_batch else size, "default": size == imputation.CPU_CHUNK_BYTES,
            "systems_per_chunk": min(len(images) * 3, max(1, size // (images[0, 0].nbytes))),
            "seconds": statistics.median(seconds[size]), "speedup": statistics.median(ratios),
            "speedup_min": min(ratios), "speedup_max": max(ratios), "max_difference": difference[size],
        })  # fmt: skip
    config = {"images": args.images, "side": args.side, "rounds": args.rounds, "systems": len(images) * 3,
              "threads": torch.get_num_threads()}  # fmt: skip
    return {"config": config, "variants": rows}


def show(run: dict[str, Any], device: torch.device) -> None:
    config = run["config"]
    print(f"\nROAD imputation, {config['systems']} systems of {config['side']} px, {config['rounds']} rounds, {device}")
    print(records.table(
        ["chunk", "systems per chunk", "median s", "speed-up (range)", "max difference"],
        [("one batch" if v["chunk_bytes"] is None else f"{v['chunk_bytes'] // 1024} KiB" + (" (default)" if
          v["default"] else ""), v["systems_per_chunk"], v["seconds"],
          f"{v['speedup']:.2f}x ({v['speedup_min']:.2f}-{v['speedup_max']:.2f})", v["max_difference"])
         for v in run["variants"]],
    ))  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    p.add_argument("--images", type=int, default=32, help="images per map kind (each gives 6 masks x 3 channels)")
    p.add_argument("--side", type=int, default=65, help="demo_shapes evaluates at 65 px")
    p.add_argument("--rounds", type=int, default=7, help="rounds over every chunk size, alternating order")
    args = p.parse_args(argv)
    device = arguments.configure(args)
    if args.quick:
        args.images, args.side, args.rounds = 2, 24, 2
    if device.type != "cpu":
        print("imputation_chunks: a CPU measurement (a GPU solves every system at once); using the CPU")
        device = torch.device("cpu")
    return records.record(args, "imputation_chunks", device, partial(measure, args), show)


if __name__ == "__main__":
    main()
