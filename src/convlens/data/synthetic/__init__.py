"""Built-in synthetic datasets (``shapes`` and ``faces``): the offline default of convlens.

Both are generated from a seed with vectorized numpy, so no files ship with the project and
train/val/test splits are reproducible from their seeds alone. Every sample carries a boolean
mask of its class-defining region, the ground truth that attribution maps are checked against.

Difficulty is tuned so that a linear classifier on raw pixels stays well below 60% accuracy
(random colour, pose, scale, clutter, brightness and contrast) while the demo CNNs exceed 90%
within a few epochs. ``SyntheticSource`` (``conf/data/shapes.yaml``, ``faces.yaml``) serves them to
the data module.
"""

from convlens.data.synthetic.drawing import CHUNK, SyntheticSplit
from convlens.data.synthetic.faces import FACES_CLASSES, FACES_SIZE, make_faces
from convlens.data.synthetic.shapes import SHAPES_CLASSES, SHAPES_SIZE, make_shapes
from convlens.data.synthetic.source import SyntheticSource

__all__ = [
    "CHUNK",
    "FACES_CLASSES",
    "FACES_SIZE",
    "SHAPES_CLASSES",
    "SHAPES_SIZE",
    "SyntheticSource",
    "SyntheticSplit",
    "make_faces",
    "make_shapes",
]
