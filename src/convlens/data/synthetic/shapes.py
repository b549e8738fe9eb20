"""The ``shapes`` dataset: 10 shapes and textures, RGB (32x32 by default, any side on request), on cluttered
gradient backgrounds."""

from __future__ import annotations

import math

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

#: Each pixel's part, in index order: the shape (the evidence mask) or the background around it.
SHAPES_PARTS: tuple[str, ...] = ("background", "shape")
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

#: The side every pixel length below is given for; other sides scale them all (objects, clutter,
#: texture periods), so an image drawn at 65 px is the 32 px scene with twice the detail.
SHAPES_SIZE = 32

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


def _check_size(size: int) -> None:
    """Below 8 px the smallest shapes (radius 11 / 32 of the side) are under 3 px: no outline left to tell apart."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 8:
        raise ValueError(f"size must be an integer side of at least 8 px, got {size!r}")


def make_shapes(n: int, seed: int, size: int = SHAPES_SIZE) -> SyntheticSplit:
    """``n`` ``size`` x ``size`` RGB images of 10 shapes and textures on cluttered gradient backgrounds.

    Colour, position, scale and (where it keeps the class) rotation are random, and faint
    blobs and lines clutter the background, so a linear classifier on pixels stays weak.
    The mask is the shape's own pixels (the whole patch for the three textures). Drawn natively at
    ``size`` (not resized), with every length scaled by ``size / SHAPES_SIZE``: edges stay one pixel soft.
    """
    _check_n(n)
    _check_size(size)
    rng = np.random.default_rng(seed)
    scale = size / SHAPES_SIZE
    labels = _balanced_labels(n, len(SHAPES_CLASSES), rng)
    radius = _uniform(rng, *_SHAPE_RADIUS, n) * scale
    margin = 0.8 * radius
    cx = margin + rng.random(n, dtype=np.float32) * (size - 1 - 2 * margin)
    cy = margin + rng.random(n, dtype=np.float32) * (size - 1 - 2 * margin)
    angle = rng.uniform(-1.0, 1.0, n).astype(np.float32) * _SHAPE_MAX_ROTATION[labels]
    period = _uniform(rng, 3.2, 5.0, n) * scale
    phase = _uniform(rng, 0.0, 2.0 * math.pi, n)
    bg_start = rng.random((n, 3), dtype=np.float32)
    bg_end = np.clip(bg_start + rng.uniform(-0.3, 0.3, (n, 3)).astype(np.float32), 0.0, 1.0)
    bg_direction = _uniform(rng, 0.0, 2.0 * math.pi, n)
    foreground = _contrasting_colours(rng, 0.5 * (bg_start + bg_end), 0.5)
    second = _contrasting_colours(rng, foreground, 0.5)
    blob_xy = rng.uniform(0, size - 1, (n, _BLOBS, 2)).astype(np.float32)
    blob_sigma = rng.uniform(1.5, 4.5, (n, _BLOBS)).astype(np.float32) * scale
    blob_alpha = rng.uniform(0.1, 0.3, (n, _BLOBS)).astype(np.float32)
    blob_colour = rng.random((n, _BLOBS, 3), dtype=np.float32)
    # Lines x cos(a) + y sin(a) = offset; offsets chosen so most lines cross the image.
    line_angle = rng.uniform(0.0, math.pi, (n, _LINES)).astype(np.float32)
    line_offset = (
        (size / 2) * (np.cos(line_angle) + np.sin(line_angle)) + rng.uniform(-12, 12, (n, _LINES)) * scale
    ).astype(np.float32)
    line_alpha = rng.uniform(0.08, 0.2, (n, _LINES)).astype(np.float32)
    line_colour = rng.random((n, _LINES, 3), dtype=np.float32)
    noise_sigma = _uniform(rng, *_SHAPE_NOISE, n)

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    # Separable grids: per-sample terms in x or y alone stay (m, 1, W) or (m, H, 1), which keeps
    # the background clutter to a few full-size operations.
    x = np.arange(size, dtype=np.float32)[None, None, :]
    y = np.arange(size, dtype=np.float32)[None, :, None]
    for start in range(0, n, CHUNK):
        s = slice(start, min(start + CHUNK, n))
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
            alpha = (_col(line_alpha[s, line]) * _coverage(dist - 0.6 * scale))[..., None]
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
    return SyntheticSplit(images=images, labels=labels, masks=masks, parts=masks.astype(np.uint8))
