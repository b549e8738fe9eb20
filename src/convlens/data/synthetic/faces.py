"""The ``faces`` dataset: 48x48 grayscale cartoon faces showing FER2013's 7 expressions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convlens.data.synthetic.drawing import (
    CHUNK,
    SyntheticSplit,
    _balanced_labels,
    _check_n,
    _col,
    _coverage,
    _to_uint8,
    _uniform,
)

FACES_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

FACES_SIZE = 48
#: Each pixel's part, in index order: the parts that carry the class (eyes, brows, mouth: the evidence
#: mask) and the rest of the face and the background (hair included), so shares of a map sum to 1.
FACES_PARTS: tuple[str, ...] = ("background", "rest of face", "eyes", "brows", "mouth")
_FACE, _EYES, _BROWS, _MOUTH = 1, 2, 3, 4

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
    brow and around the mouth, posed with the face, so its size says nothing about the class. The
    parts (:data:`FACES_PARTS`) split it: an eye window's pixels above the line halfway between the
    brow and the top of the eye are brows, the others eyes.
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
    parts = np.zeros((n, size, size), dtype=np.uint8)
    x = np.arange(size, dtype=np.float32)[None, None, :]
    y = np.arange(size, dtype=np.float32)[None, :, None]
    for start in range(0, n, CHUNK):
        s = slice(start, min(start + CHUNK, n))
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
        parts[s][face >= 0.5] = _FACE
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
            region = _in_region(eu, ev, _EYE_REGION)
            masks[s][at, rows, cols] |= region
            brows = ev < 0.5 * (curve - eye_open)  # above the line halfway between brow and eye top
            parts[s][at, rows, cols] = np.where(region, np.where(brows, _BROWS, _EYES), parts[s][at, rows, cols])
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
        region = _in_region(wu, mv, _MOUTH_REGION)
        masks[s][at, rows, cols] |= region
        parts[s][at, rows, cols] = np.where(region, _MOUTH, parts[s][at, rows, cols])
        # Lighting and sensor noise.
        image = (image - 0.5) * _col(contrast[s]) + 0.5 + _col(brightness[s])
        image += rng.standard_normal(image.shape, dtype=np.float32) * _col(noise_sigma[s])
        images[s, ..., 0] = _to_uint8(image)
    return SyntheticSplit(images=images, labels=labels, masks=masks, parts=parts)
