"""Built-in synthetic datasets (``shapes`` and ``faces``): the offline default of convlens.

Both are generated from a seed with vectorized numpy, so no files ship with the project and
train/val/test splits are reproducible from their seeds alone. Every sample carries a boolean
mask of its class-defining region, the ground truth that attribution maps are checked against.

Difficulty is tuned so that a linear classifier on raw pixels stays well below 60% accuracy
(random colour, pose, scale, clutter, brightness and contrast) while the demo CNNs exceed 90%
within a few epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHAPES_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "diamond",
    "star",
    "horizontal_stripes",
    "vertical_stripes",
    "checkerboard",
)
FACES_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

SHAPES_SIZE = 32
FACES_SIZE = 48
#: Samples rendered at once: bounds peak memory and keeps the working set in cache.
_CHUNK = 128


@dataclass(frozen=True)
class SyntheticSplit:
    """One generated split; ``images`` is uint8 (N, H, W, C), ``masks`` the class evidence (N, H, W)."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of samples, got {n!r}")


def _balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n // num_classes`` per class, the remainder going to the first classes, shuffled."""
    return rng.permutation(np.arange(n, dtype=np.int64) % num_classes)


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, n).astype(np.float32)


def _col(values: np.ndarray) -> np.ndarray:
    """Per-sample values shaped to broadcast against (m, H, W) grids."""
    return values[:, None, None]


def _coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------------------- shapes

#: Largest random rotation (radians) per class: small where rotation would turn one class into
#: another (square <-> diamond, horizontal <-> vertical stripes), free where it cannot.
_SHAPE_MAX_ROTATION = np.array([math.pi, 0.26, 0.3, 0.26, math.pi, 0.26, math.pi, 0.26, 0.26, 0.26], dtype=np.float32)
_TEXTURE_CLASSES = frozenset({7, 8, 9})
#: Shape radius in pixels. ResNet's stem reduces 32 px to an 8x8 map, so smaller shapes leave the
#: outlines that tell circle, square and diamond apart only 2-3 cells wide. From 8 px up, ResNet-18
#: needed 7 epochs (97% validation accuracy); from 11 px up it reaches 96% in 5 (`make demo`).
_SHAPE_RADIUS = (11.0, 13.5)
_SHAPE_NOISE = (0.01, 0.04)
#: Background clutter per image: soft colour blobs and faint straight lines.
_BLOBS = 3
_LINES = 1


def _shape_distance(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (in units of the shape's radius) of shape ``label`` at rotated coordinates."""
    r = np.sqrt(u * u + v * v)
    if label == 0:
        return r - 1.0
    if label == 1:
        return np.maximum(np.abs(u), np.abs(v)) - 0.82
    if label == 2:
        # Equilateral triangle, apex up (v points down): three half-planes, inradius 0.55.
        half_sqrt3 = math.sqrt(3.0) / 2.0
        return np.maximum.reduce([v - 0.55, -half_sqrt3 * u - 0.5 * v - 0.55, half_sqrt3 * u - 0.5 * v - 0.55])
    if label == 3:
        au, av = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(au - 0.32, av - 1.0), np.maximum(av - 0.32, au - 1.0))
    if label == 4:
        return np.abs(r - 0.75) - 0.25
    if label == 5:
        return (np.abs(u) + np.abs(v) - 1.15) / math.sqrt(2.0)
    if label == 6:
        # Five-pointed star: the radius falls linearly from 1 at each tip to 0.42 between tips.
        wedge = np.abs(np.mod(np.arctan2(u, -v) * (5.0 / (2.0 * math.pi)) + 0.5, 1.0) - 0.5) * 2.0
        return (r - (1.0 - 0.58 * wedge)) * 0.6
    # Textures live on a disk-shaped patch.
    return r - 1.0


def _texture(label: int, u_px: np.ndarray, v_px: np.ndarray, period: np.ndarray, phase: np.ndarray):
    """Coverage in [0, 1] of the first texture colour; ``u_px, v_px`` are rotated pixel offsets."""
    k = (2.0 * math.pi) / period
    if label == 7:
        wave = np.sin(v_px * k + phase)
    elif label == 8:
        wave = np.sin(u_px * k + phase)
    else:
        # Checkerboard cells are half a period wide; a longer period keeps them >= 2 pixels.
        k = k / 1.4
        wave = np.sin(u_px * k + phase) * np.sin(v_px * k + phase)
    # wave / k is about the distance in pixels to the nearest zero crossing: crisp, anti-aliased edges.
    return np.clip(0.5 + wave / k * 1.4, 0.0, 1.0)


def _contrasting_colours(
    rng: np.random.Generator, reference: np.ndarray, min_distance: float, tries: int = 30
) -> np.ndarray:
    """Random RGB colours at least ``min_distance`` (Euclidean, [0,1]^3) from ``reference``."""
    colours = rng.random(reference.shape, dtype=np.float32)
    for _ in range(tries):
        bad = np.linalg.norm(colours - reference, axis=1) < min_distance
        if not bad.any():
            break
        colours[bad] = rng.random((int(bad.sum()), 3), dtype=np.float32)
    bad = np.linalg.norm(colours - reference, axis=1) < min_distance
    colours[bad] = np.where(reference[bad] > 0.5, 0.0, 1.0)  # the far corner always contrasts
    return colours


def make_shapes(n: int, seed: int) -> SyntheticSplit:
    """``n`` 32x32 RGB images of 10 shapes and textures on cluttered gradient backgrounds.

    Colour, position, scale and (where it keeps the class) rotation are random, and faint
    blobs and lines clutter the background, so a linear classifier on pixels stays weak.
    The mask is the shape's own pixels (the whole patch for the three textures).
    """
    _check_n(n)
    rng = np.random.default_rng(seed)
    size = SHAPES_SIZE
    labels = _balanced_labels(n, len(SHAPES_CLASSES), rng)
    radius = _uniform(rng, *_SHAPE_RADIUS, n)
    margin = 0.8 * radius
    cx = margin + rng.random(n, dtype=np.float32) * (size - 1 - 2 * margin)
    cy = margin + rng.random(n, dtype=np.float32) * (size - 1 - 2 * margin)
    angle = rng.uniform(-1.0, 1.0, n).astype(np.float32) * _SHAPE_MAX_ROTATION[labels]
    period = _uniform(rng, 3.2, 5.0, n)
    phase = _uniform(rng, 0.0, 2.0 * math.pi, n)
    bg_start = rng.random((n, 3), dtype=np.float32)
    bg_end = np.clip(bg_start + rng.uniform(-0.3, 0.3, (n, 3)).astype(np.float32), 0.0, 1.0)
    bg_direction = _uniform(rng, 0.0, 2.0 * math.pi, n)
    foreground = _contrasting_colours(rng, 0.5 * (bg_start + bg_end), 0.5)
    second = _contrasting_colours(rng, foreground, 0.5)
    blob_xy = rng.uniform(0, size - 1, (n, _BLOBS, 2)).astype(np.float32)
    blob_sigma = rng.uniform(1.5, 4.5, (n, _BLOBS)).astype(np.float32)
    blob_alpha = rng.uniform(0.1, 0.3, (n, _BLOBS)).astype(np.float32)
    blob_colour = rng.random((n, _BLOBS, 3), dtype=np.float32)
    # Lines x cos(a) + y sin(a) = offset; offsets chosen so most lines cross the image.
    line_angle = rng.uniform(0.0, math.pi, (n, _LINES)).astype(np.float32)
    line_offset = ((size / 2) * (np.cos(line_angle) + np.sin(line_angle)) + rng.uniform(-12, 12, (n, _LINES))).astype(
        np.float32
    )
    line_alpha = rng.uniform(0.08, 0.2, (n, _LINES)).astype(np.float32)
    line_colour = rng.random((n, _LINES, 3), dtype=np.float32)
    noise_sigma = _uniform(rng, *_SHAPE_NOISE, n)

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    # Separable grids: per-sample terms in x or y alone stay (m, 1, W) or (m, H, 1), which keeps
    # the background clutter to a few full-size operations.
    x = np.arange(size, dtype=np.float32)[None, None, :]
    y = np.arange(size, dtype=np.float32)[None, :, None]
    for start in range(0, n, _CHUNK):
        s = slice(start, min(start + _CHUNK, n))
        m = s.stop - s.start
        # Background: linear colour gradient, then soft blobs and thin lines as clutter.
        direction = bg_direction[s]
        t = _col(np.cos(direction)) * (x - size / 2) + _col(np.sin(direction)) * (y - size / 2)
        t = np.clip(t / size + 0.5, 0.0, 1.0)[..., None]
        image = bg_start[s, None, None] + (bg_end[s, None, None] - bg_start[s, None, None]) * t
        for b in range(_BLOBS):
            inv = _col(-0.5 / blob_sigma[s, b] ** 2)
            gx = np.exp((x - _col(blob_xy[s, b, 0])) ** 2 * inv)
            gy = np.exp((y - _col(blob_xy[s, b, 1])) ** 2 * inv) * _col(blob_alpha[s, b])
            image += (blob_colour[s, b, None, None] - image) * (gx * gy)[..., None]
        for line in range(_LINES):
            nx, ny = _col(np.cos(line_angle[s, line])), _col(np.sin(line_angle[s, line]))
            dist = np.abs((x * nx - _col(line_offset[s, line])) + y * ny)
            alpha = (_col(line_alpha[s, line]) * _coverage(dist - 0.6))[..., None]
            image += (line_colour[s, line, None, None] - image) * alpha
        # Foreground: rotate the grid into each shape's frame, then one distance function per class.
        cos, sin = _col(np.cos(angle[s])), _col(np.sin(angle[s]))
        du, dv = x - _col(cx[s]), y - _col(cy[s])
        u_px, v_px = cos * du + sin * dv, -sin * du + cos * dv
        coverage = np.empty((m, size, size), dtype=np.float32)
        colour = np.broadcast_to(foreground[s, None, None], (m, size, size, 3)).copy()
        chunk_labels = labels[s]
        for label in np.unique(chunk_labels):
            idx = np.flatnonzero(chunk_labels == label)
            r = _col(radius[s][idx])
            coverage[idx] = _coverage(_shape_distance(int(label), u_px[idx] / r, v_px[idx] / r) * r)
            if label in _TEXTURE_CLASSES:
                first = _texture(int(label), u_px[idx], v_px[idx], _col(period[s][idx]), _col(phase[s][idx]))[..., None]
                colour[idx] = second[s][idx, None, None] + (colour[idx] - second[s][idx, None, None]) * first
        image += (colour - image) * coverage[..., None]
        image += rng.standard_normal(image.shape, dtype=np.float32) * noise_sigma[s, None, None, None]
        images[s] = _to_uint8(image)
        masks[s] = coverage >= 0.5
    return SyntheticSplit(images=images, labels=labels, masks=masks)


# ---------------------------------------------------------------------------------------- faces
# Faces are drawn in a face frame: u to the right, v down, unit = half the face height, origin at
# the face centre. Only the eyes, brows and mouth depend on the class; everything else (outline,
# skin, hair, nose, pose, lighting) is drawn from one distribution for all classes.

#: Per-class expression parameters (rows in FACES_CLASSES order), in face units. Eye openness is
#: the eye's half height; brow ends are heights above the eye centre (negative is up) at the inner
#: and outer end; a positive mouth curve lifts the corners, tilt lifts side a's corner and wave
#: bends the line into a sneer; thickness scales the stroke. Closed eyes are drawn as arcs. "a" is
#: the side that carries disgust's asymmetry (randomly left or right), "b" the other side.
_EXPRESSION_FIELDS = (
    "eye_open_a", "eye_open_b", "brow_inner_a", "brow_outer_a", "brow_inner_b", "brow_outer_b",
    "brow_arch", "mouth_open", "mouth_width", "mouth_height", "mouth_curve", "mouth_tilt",
    "mouth_wave", "mouth_thickness", "eyes_closed", "pupil",
)  # fmt: skip
_EXPRESSIONS = np.array(
    [
        [0.065, 0.065, -0.12, -0.30, -0.12, -0.30, 0.00, 0, 0.20, 0.00, 0.00, 0.00, 0.00, 1.8, 0, 0.07],  # Angry
        [0.020, 0.100, -0.12, -0.22, -0.38, -0.34, 0.00, 0, 0.26, 0.00, 0.00, 0.10, 0.12, 1.0, 0, 0.07],  # Disgust
        [0.140, 0.140, -0.46, -0.28, -0.46, -0.28, 0.00, 1, 0.30, 0.06, 0.00, 0.00, 0.00, 1.0, 0, 0.035],  # Fear
        [0.035, 0.035, -0.26, -0.26, -0.26, -0.26, 0.05, 0, 0.32, 0.00, 0.18, 0.00, 0.00, 1.0, 1, 0.07],  # Happy
        [0.070, 0.070, -0.40, -0.17, -0.40, -0.17, 0.00, 0, 0.26, 0.00, -0.20, 0.00, 0.00, 1.0, 0, 0.07],  # Sad
        [0.150, 0.150, -0.36, -0.36, -0.36, -0.36, 0.09, 1, 0.17, 0.22, 0.00, 0.00, 0.00, 1.0, 0, 0.07],  # Surprise
        [0.085, 0.085, -0.25, -0.25, -0.25, -0.25, 0.00, 0, 0.26, 0.00, 0.00, 0.00, 0.00, 1.0, 0, 0.07],  # Neutral
    ],
    dtype=np.float32,
)
#: Uniform jitter (+-) of each expression parameter, small enough to keep classes apart.
_EXPRESSION_JITTER = np.array(
    [0.012, 0.012, 0.03, 0.03, 0.03, 0.03, 0.015, 0, 0.03, 0.015, 0.03, 0.02, 0.02, 0.1, 0, 0.005], dtype=np.float32
)
_EYE_HALF_WIDTH = 0.17
_BROW_HALF_LENGTH = 0.2
#: Pose ranges: pixels per face unit (half the face height) and rotation in radians.
_FACE_SCALE = (19.5, 21.0)
_FACE_MAX_ANGLE = 0.07
#: The class-evidence region: rectangles (u centre, v centre, half width, half height) in the face
#: frame, relative to each eye and to the mouth, that hold every expression's extreme features.
_EYE_REGION = (0.0, -0.185, 0.25, 0.395)
_MOUTH_REGION = (0.0, -0.015, 0.38, 0.285)
_NOSE_REGION = (0.02, 0.2, 0.06, 0.17)


def _window_half(half_width: float, half_height: float) -> tuple[int, int]:
    """Half width/height in pixels of a box holding the posed rectangle at any scale and angle."""
    angles = np.linspace(0.0, _FACE_MAX_ANGLE, 32)
    cos, sin = np.cos(angles), np.sin(angles)
    half_w = float(np.max(half_width * cos + half_height * sin))
    half_h = float(np.max(half_width * sin + half_height * cos))
    # +1 pixel: rounding of the window centre and the anti-aliased edge.
    return math.ceil(_FACE_SCALE[1] * half_w) + 1, math.ceil(_FACE_SCALE[1] * half_h) + 1


@dataclass(frozen=True)
class _Pose:
    """Per-sample similarity transform between pixels and the face frame, arrays shaped (m, 1, 1)."""

    cx: np.ndarray
    cy: np.ndarray
    cos: np.ndarray
    sin: np.ndarray
    scale: np.ndarray

    def to_face(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.cx, y - self.cy
        return (self.cos * dx + self.sin * dy) / self.scale, (self.cos * dy - self.sin * dx) / self.scale

    def window(
        self, u: np.ndarray, v: np.ndarray, region: tuple[float, float, float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel rows (m, h, 1) and columns (m, 1, w) of the box around ``region`` placed at (u, v).

        Features are rendered only inside such boxes, a fraction of the image, which is what keeps
        generation fast. Indices are clipped to the image; clipped duplicates get identical values.
        """
        u0, v0, half_width, half_height = region
        u, v = u + u0, v + v0
        x = self.cx + self.scale * (self.cos * u - self.sin * v)
        y = self.cy + self.scale * (self.sin * u + self.cos * v)
        half_w, half_h = _window_half(half_width, half_height)
        cols = np.rint(x).astype(np.int64) + np.arange(-half_w, half_w + 1)[None, None, :]
        rows = np.rint(y).astype(np.int64) + np.arange(-half_h, half_h + 1)[None, :, None]
        return np.clip(rows, 0, FACES_SIZE - 1), np.clip(cols, 0, FACES_SIZE - 1)


def _in_region(u: np.ndarray, v: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    u0, v0, half_width, half_height = region
    return (np.abs(u - u0) <= half_width) & (np.abs(v - v0) <= half_height)


def _ellipse_distance(u: np.ndarray, v: np.ndarray, a, b, scale: np.ndarray) -> np.ndarray:
    """Approximate signed distance in pixels to an axis-aligned ellipse centred at the origin.

    The implicit function divided by its gradient length, so it stays a distance even for the
    thin slits of squinted eyes (scaling by the short radius would smear them sideways).
    """
    k0 = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    k1 = np.sqrt((u / (a * a)) ** 2 + (v / (b * b)) ** 2) + 1e-6
    return k0 * (k0 - 1.0) / k1 * scale


def _stroke_distance(
    u: np.ndarray, v: np.ndarray, half_length, curve: np.ndarray, slope: np.ndarray, half_thickness, scale
) -> np.ndarray:
    """Signed distance in pixels to a thick stroke along ``v = curve`` for ``|u| <= half_length``."""
    across = (np.abs(v - curve) / np.sqrt(1.0 + slope * slope) - half_thickness) * scale
    return np.maximum(across, (np.abs(u) - half_length) * scale)


def _draw(image: np.ndarray, value, coverage: np.ndarray) -> None:
    image += (value - image) * coverage


def make_faces(n: int, seed: int) -> SyntheticSplit:
    """``n`` 48x48 grayscale cartoon faces showing the 7 FER2013 expressions (FER label order).

    Only eyes, brows and mouth carry the class; pose, scale, face shape, skin, hair, lighting and
    noise are random and class-independent. The mask is a fixed region around each eye with its
    brow and around the mouth, posed with the face, so its size says nothing about the class.
    """
    _check_n(n)
    rng = np.random.default_rng(seed)
    size = FACES_SIZE
    labels = _balanced_labels(n, len(FACES_CLASSES), rng)
    # Pose and face shape.
    scale = _uniform(rng, *_FACE_SCALE, n)
    angle = _uniform(rng, -_FACE_MAX_ANGLE, _FACE_MAX_ANGLE, n)
    # Wide shifts (features stay inside the image, the face outline may not): a CNN does not mind,
    # a linear classifier on pixels does.
    cx = size / 2 - 0.5 + _uniform(rng, -8.0, 8.0, n)
    cy = size / 2 - 0.5 + _uniform(rng, -5.0, 5.0, n)
    face_width = _uniform(rng, 0.70, 0.84, n)
    chin = _uniform(rng, 0.95, 1.08, n)
    # Tones and lighting.
    skin = _uniform(rng, 0.45, 0.85, n)
    background = rng.random((n, 2), dtype=np.float32)
    bg_direction = _uniform(rng, 0.0, 2.0 * math.pi, n)
    hair = _uniform(rng, 0.02, 0.55, n)
    hairline = _uniform(rng, -0.95, -0.7, n)
    long_hair = rng.random(n) < 0.5
    ink = skin * _uniform(rng, 0.05, 0.3, n)
    sclera = np.minimum(skin + _uniform(rng, 0.15, 0.4, n), 1.0)
    contrast = _uniform(rng, 0.8, 1.15, n)
    brightness = _uniform(rng, -0.15, 0.15, n)
    noise_sigma = _uniform(rng, 0.005, 0.025, n)
    # Feature placement and stroke width (class-independent).
    eye_x = _uniform(rng, 0.31, 0.36, n)
    eye_y = _uniform(rng, -0.16, -0.09, n)
    mouth_y = _uniform(rng, 0.46, 0.55, n)
    line_half = _uniform(rng, 0.045, 0.065, n)
    # Expression: class means, jitter, and the side (+1 right, -1 left) of disgust's asymmetry.
    jitter = rng.uniform(-1.0, 1.0, (n, len(_EXPRESSION_FIELDS))).astype(np.float32)
    expression = _EXPRESSIONS[labels] + jitter * _EXPRESSION_JITTER
    side_a = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)

    images = np.empty((n, size, size, 1), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=bool)
    x = np.arange(size, dtype=np.float32)[None, None, :]
    y = np.arange(size, dtype=np.float32)[None, :, None]
    for start in range(0, n, _CHUNK):
        s = slice(start, min(start + _CHUNK, n))
        m = s.stop - s.start
        at = np.arange(m)[:, None, None]
        c = {name: _col(values) for name, values in zip(_EXPRESSION_FIELDS, expression[s].T, strict=True)}
        side, ink_s, px = _col(side_a[s]), _col(ink[s]), _col(scale[s])
        pose = _Pose(_col(cx[s]), _col(cy[s]), _col(np.cos(angle[s])), _col(np.sin(angle[s])), px)
        u, v = pose.to_face(x, y)
        direction = bg_direction[s]
        t = _col(np.cos(direction)) * (x - size / 2) + _col(np.sin(direction)) * (y - size / 2)
        t = np.clip(t / size + 0.5, 0.0, 1.0)
        bg0, bg1 = _col(background[s, 0]), _col(background[s, 1])
        image = bg0 + (bg1 - bg0) * t
        # Hair behind the head (long hair reaches the jaw), then the face, then the fringe.
        fw = _col(face_width[s])
        back = _ellipse_distance(u, v + 0.08, fw + 0.12, np.float32(1.0), px)
        back = np.where(_col(long_hair[s]) | (v < -0.2), back, np.inf)
        _draw(image, _col(hair[s]), _coverage(back))
        face = _coverage(_ellipse_distance(u, v, fw, np.where(v > 0, _col(chin[s]), 1.0), px))
        _draw(image, _col(skin[s]), face)
        _draw(image, _col(hair[s]), _coverage((v - _col(hairline[s])) * px) * face)

        # Nose (class-independent), eyes with brows, and mouth, each drawn inside its own window.
        rows, cols = pose.window(np.float32(0.0), np.float32(0.0), _NOSE_REGION)
        patch = image[at, rows, cols]
        wu, wv = pose.to_face(cols, rows)
        nose = _stroke_distance(wv - 0.2, wu - 0.02, np.float32(0.13), 0.0, 0.0, np.float32(0.025), px)
        _draw(patch, 0.5 * (ink_s + _col(skin[s])), _coverage(nose))
        image[at, rows, cols] = patch
        for sign in (-1.0, 1.0):
            ex, ey = sign * _col(eye_x[s]), _col(eye_y[s])
            rows, cols = pose.window(ex, ey, _EYE_REGION)
            patch = image[at, rows, cols]
            wu, wv = pose.to_face(cols, rows)
            eu, ev = wu - ex, wv - ey
            on_a = side == sign  # this eye is on the side that carries disgust's asymmetry
            eye_open = np.where(on_a, c["eye_open_a"], c["eye_open_b"])
            eye = _ellipse_distance(eu, ev, np.float32(_EYE_HALF_WIDTH), eye_open, px)
            closed = c["eyes_closed"] > 0.5
            eye_coverage = np.where(closed, 0.0, _coverage(eye))
            _draw(patch, _col(sclera[s]), eye_coverage)
            pupil = _ellipse_distance(eu, ev, c["pupil"], c["pupil"], px)
            _draw(patch, ink_s, np.minimum(_coverage(pupil), eye_coverage))
            # The lid outline, or for closed (laughing) eyes an arc bulging upward.
            rel = eu / _EYE_HALF_WIDTH
            arc = _stroke_distance(
                eu, ev, _EYE_HALF_WIDTH, 0.09 * rel**2 - 0.06, 0.18 * rel / _EYE_HALF_WIDTH, _col(line_half[s]), px
            )
            _draw(patch, ink_s, _coverage(np.where(closed, arc, np.abs(eye + 0.1) - 0.5)))
            # Brow: straight from the outer to the inner end, plus an arch in the middle.
            inner = np.where(on_a, c["brow_inner_a"], c["brow_inner_b"])
            outer = np.where(on_a, c["brow_outer_a"], c["brow_outer_b"])
            rise = (inner - outer) * (-0.5 * sign / _BROW_HALF_LENGTH)  # dv/du of the straight part
            bump = 1.0 - (eu / _BROW_HALF_LENGTH) ** 2
            curve = 0.5 * (inner + outer) + rise * eu - c["brow_arch"] * bump
            slope = rise + c["brow_arch"] * 2.0 * eu / _BROW_HALF_LENGTH**2
            brow = _stroke_distance(eu, ev, _BROW_HALF_LENGTH, curve, slope, _col(line_half[s]) * 1.2, px)
            _draw(patch, ink_s, _coverage(brow))
            image[at, rows, cols] = patch
            masks[s][at, rows, cols] |= _in_region(eu, ev, _EYE_REGION)
        # Mouth: an open ellipse, or a stroke (curved, tilted, wavy, thick or thin).
        my = _col(mouth_y[s])
        rows, cols = pose.window(np.float32(0.0), my, _MOUTH_REGION)
        patch = image[at, rows, cols]
        wu, wv = pose.to_face(cols, rows)
        mv = wv - my
        width = c["mouth_width"]
        lips = _ellipse_distance(wu, mv, width, np.maximum(c["mouth_height"], 0.02), px)
        rel = wu / width
        wave = c["mouth_wave"] * side
        curve = -c["mouth_curve"] * rel**2 - c["mouth_tilt"] * side * rel - wave * np.sin(math.pi * rel)
        slope = -2.0 * c["mouth_curve"] * rel - c["mouth_tilt"] * side - wave * math.pi * np.cos(math.pi * rel)
        thickness = _col(line_half[s]) * c["mouth_thickness"]
        stroke = _stroke_distance(wu, mv, width, curve, slope / width, thickness, px)
        _draw(patch, ink_s, _coverage(np.where(c["mouth_open"] > 0.5, lips, stroke)))
        image[at, rows, cols] = patch
        masks[s][at, rows, cols] |= _in_region(wu, mv, _MOUTH_REGION)
        # Lighting and sensor noise.
        image = (image - 0.5) * _col(contrast[s]) + 0.5 + _col(brightness[s])
        image += rng.standard_normal(image.shape, dtype=np.float32) * _col(noise_sigma[s])
        images[s, ..., 0] = _to_uint8(image)
    return SyntheticSplit(images=images, labels=labels, masks=masks)
