"""The built-in synthetic datasets as a source: generated from a seed, nothing read from disk."""

from __future__ import annotations

from collections.abc import Collection

from convlens.data.arrays import SPLITS, ArraySplit, DatasetArrays
from convlens.data.synthetic.faces import FACES_CLASSES, FACES_PARTS, make_faces
from convlens.data.synthetic.shapes import SHAPES_CLASSES, SHAPES_PARTS, make_shapes

GENERATORS = {
    "shapes": (make_shapes, SHAPES_CLASSES, SHAPES_PARTS),
    "faces": (make_faces, FACES_CLASSES, FACES_PARTS),
}
PARTS_FROM = "drawn by the generator (ground truth)"
#: The kinds drawn at any side (``size``); the faces' features are placed on their 48 px grid.
SIZED = frozenset({"shapes"})


class SyntheticSource:
    """``kind`` is 'shapes' or 'faces'; train/val/test are drawn with seeds seed, seed+1, seed+2.
    ``size``: the side the shapes are drawn at (None: the generator's own), so a larger model input gets
    native detail rather than upsampled pixels."""

    def __init__(
        self, kind: str, train_size: int, val_size: int, test_size: int, seed: int = 0, size: int | None = None
    ) -> None:
        if kind not in GENERATORS:
            raise ValueError(
                f"data.source.kind='{kind}' is not a synthetic dataset; choose one of {sorted(GENERATORS)}"
            )
        if size is not None and kind not in SIZED:
            raise ValueError(
                f"data.source.size={size}: only {sorted(SIZED)} can be drawn at another side; leave it null"
            )
        self.kind = kind
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed = seed
        self.side = {} if size is None else {"size": size}

    def load(self, splits: Collection[str] = SPLITS) -> DatasetArrays:
        """Only the ``splits`` asked for are drawn (each from its own seed, so alone it is the same as
        with the others): a stage that reads the test split does not draw the training images."""
        make, class_names, part_names = GENERATORS[self.kind]
        drawn = {}
        for offset, (name, size) in enumerate(self.sizes.items()):
            if name in splits:
                generated = make(size, self.seed + offset, **self.side)
                drawn[name] = ArraySplit(generated.images, generated.labels, generated.masks, generated.parts)
        seeds = ", ".join(f"{name} {self.seed + offset}" for offset, name in enumerate(self.sizes))
        return DatasetArrays(
            drawn.get("train"), drawn.get("val"), drawn.get("test"), tuple(class_names), part_names=part_names,
            parts_from=PARTS_FROM, splits_from=f"drawn by the generator, each split from its own seed ({seeds})",
        )  # fmt: skip
