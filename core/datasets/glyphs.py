"""Stroke skeletons of the handwritten Arabic-Indic digits ٠١٢٣٤٥٦٧٨٩ used by the synthetic dataset.

Each digit has one or more *variants* (the ways people write it, as seen in AHDD). A variant is a
list of strokes; a stroke is a list of pieces; a piece is a smooth Catmull-Rom curve through its
control points, and consecutive pieces meet at a shared point, which makes a sharp corner (the
teeth of ٢ and ٣, the tip of ٧ and ٨). Coordinates are (x, y) in a unit box, y pointing down.

`compile_glyph` turns a variant into control points plus a fixed linear basis, so the curve points
of many jittered copies are one matrix product (see `Glyph.curve`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]
Piece = tuple[Point, ...]
Stroke = tuple[Piece, ...]

#: Curve points drawn per spline segment between two control points.
SAMPLES_PER_SEGMENT = 5


def _ellipse(n: int, rx: float, ry: float) -> Piece:
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return tuple((round(0.5 + rx * np.cos(a), 4), round(0.5 + ry * np.sin(a), 4)) for a in angles)


#: Variants per digit (index = digit value). Closed loops are marked in CLOSED below.
VARIANTS: tuple[tuple[tuple[Stroke, ...], ...], ...] = (
    # ٠ a dot: a small closed blob, filled (the generator decides fill, ring or outline)
    (((_ellipse(8, 0.5, 0.5),),),),
    # ١ a vertical stroke; rarely with a small entry flick
    (
        ((((0.5, 0.0), (0.47, 0.5), (0.5, 1.0)),),),
        ((((0.3, 0.14), (0.5, 0.0)), ((0.5, 0.0), (0.5, 0.5), (0.47, 1.0))),),
    ),
    # ٢ one tooth on the top-right end of the arm, stem curving down
    (
        (
            (
                ((0.88, 0.3), (0.84, 0.02)),
                ((0.84, 0.02), (0.55, 0.0), (0.25, 0.1), (0.28, 0.45), (0.5, 0.78), (0.78, 1.0)),
            ),
        ),
        ((((0.85, 0.28), (0.8, 0.0)), ((0.8, 0.0), (0.5, 0.02), (0.3, 0.12), (0.32, 0.5), (0.38, 1.0))),),
        # written wide: the stem turns into a long stroke to the right, like a C
        ((((0.85, 0.22), (0.8, 0.0)), ((0.8, 0.0), (0.35, 0.02), (0.1, 0.3), (0.2, 0.7), (0.55, 0.88), (0.95, 0.9))),),
    ),
    # ٣ two teeth on the arm (cusps at their tips, round between), the stem rising to the left
    (
        (
            (
                ((0.95, 0.0), (0.83, 0.33), (0.7, 0.02)),
                ((0.7, 0.02), (0.57, 0.33), (0.35, 0.0)),
                ((0.35, 0.0), (0.37, 0.45), (0.5, 0.75), (0.62, 1.0)),
            ),
        ),
        (
            (
                ((0.9, 0.04), (0.8, 0.28), (0.68, 0.05)),
                ((0.68, 0.05), (0.56, 0.28), (0.38, 0.0)),
                ((0.38, 0.0), (0.4, 0.45), (0.45, 1.0)),
            ),
        ),
    ),
    # ٤ a small upper bow, a cusp on the right, a larger lower bow ending in a tail to the right
    (
        (
            (
                ((0.72, 0.06), (0.45, 0.0), (0.28, 0.12), (0.38, 0.35), (0.58, 0.42)),
                ((0.58, 0.42), (0.3, 0.5), (0.18, 0.72), (0.35, 0.92), (0.62, 0.95), (0.92, 0.93)),
            ),
        ),
        (
            (
                ((0.8, 0.08), (0.5, 0.0), (0.28, 0.15), (0.42, 0.42), (0.62, 0.45)),
                ((0.62, 0.45), (0.35, 0.55), (0.25, 0.8), (0.45, 1.0), (0.8, 0.95)),
            ),
        ),
        # written flat: a small bow and a long wavy tail to the right
        (
            (
                ((0.5, 0.08), (0.25, 0.0), (0.12, 0.18), (0.3, 0.35)),
                ((0.3, 0.35), (0.12, 0.45), (0.2, 0.65), (0.55, 0.6), (0.85, 0.7), (1.2, 0.68)),
            ),
        ),
    ),
    # ٥ a loop: an oval, or a heart with a cusp at the bottom
    (
        ((_ellipse(8, 0.5, 0.36),),),
        ((((0.5, 1.0), (0.12, 0.6), (0.15, 0.15), (0.5, 0.05), (0.85, 0.15), (0.88, 0.6), (0.5, 1.0)),),),
    ),
    # ٦ an arm from the left, then a stem down on the right: sharp or rounded
    (
        ((((0.08, 0.15), (0.35, 0.03), (0.78, 0.05)), ((0.78, 0.05), (0.8, 0.5), (0.85, 1.0))),),
        ((((0.05, 0.2), (0.3, 0.05), (0.65, 0.05), (0.8, 0.3), (0.82, 0.65), (0.85, 1.0)),),),
    ),
    # ٧ a V: sharp or rounded
    (
        ((((0.1, 0.0), (0.5, 1.0)), ((0.5, 1.0), (0.9, 0.0))),),
        ((((0.1, 0.0), (0.3, 0.75), (0.5, 1.0), (0.7, 0.75), (0.9, 0.0)),),),
    ),
    # ٨ an inverted V: sharp or rounded
    (
        ((((0.1, 1.0), (0.5, 0.0)), ((0.5, 0.0), (0.9, 1.0))),),
        ((((0.1, 1.0), (0.3, 0.25), (0.5, 0.0), (0.7, 0.25), (0.9, 1.0)),),),
    ),
    # ٩ a loop on top with a tail down from its right side
    (
        (
            (
                ((0.75, 0.42), (0.4, 0.46), (0.15, 0.24), (0.38, 0.0), (0.7, 0.08), (0.75, 0.42)),
                ((0.75, 0.42), (0.76, 0.7), (0.8, 1.0)),
            ),
        ),
        (
            (
                ((0.65, 0.35), (0.4, 0.38), (0.28, 0.2), (0.42, 0.02), (0.62, 0.08), (0.65, 0.35)),
                ((0.65, 0.35), (0.68, 0.7), (0.75, 1.0)),
            ),
        ),
    ),
)

#: (digit, variant) pairs whose single stroke is a closed loop.
CLOSED: frozenset[tuple[int, int]] = frozenset({(0, 0), (5, 0)})

#: How large each digit is written relative to a tall stroke such as ١, for the same pen. A digit
#: written small (the dot ٠ above all) comes out with thick strokes once scaled to the 20 px box;
#: one written large, thin. Tuned so each digit's ink coverage matches the real AHDD sample's.
NATURAL_SIZE: tuple[float, ...] = (0.3, 1.2, 1.05, 1.12, 1.2, 1.0, 1.08, 0.85, 0.85, 1.0)

#: How freely each digit's shape varies (scales the writer's habits and per-image jitter): a dot
#: has no fixed outline, while a ١ that bends much stops looking like one.
SHAPE_FREEDOM: tuple[float, ...] = (2.2, 0.35, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Glyph:
    """A compiled variant: control points and the linear map from them to curve points.

    ``controls`` is (C, 2); ``basis`` is (P, C) so that ``basis @ controls`` are the P curve points;
    ``stroke_ends`` are the end offsets of each stroke within those P points.
    """

    digit: int
    variant: int
    controls: np.ndarray
    basis: np.ndarray
    stroke_ends: tuple[int, ...]
    closed: bool

    def curve(self, controls: np.ndarray) -> np.ndarray:
        """Curve points for control points of shape (..., C, 2): returns (..., P, 2)."""
        return np.einsum("pc,...cd->...pd", self.basis, controls)


def _catmull_rom_rows(idx: list[int], n_controls: int, closed: bool) -> np.ndarray:
    """Basis rows sampling a uniform Catmull-Rom spline through the control points ``idx``.

    Open curves get virtual end points reflected through the ends (so a 2-point piece is a straight
    line); closed curves wrap around and omit the repeated last point.
    """
    m = len(idx)
    segments = m if closed else m - 1
    t = np.arange(SAMPLES_PER_SEGMENT) / SAMPLES_PER_SEGMENT
    # Catmull-Rom weights of p[i-1], p[i], p[i+1], p[i+2] at parameter t
    w = 0.5 * np.stack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3], axis=1)
    rows = []
    for s in range(segments):
        block = np.zeros((SAMPLES_PER_SEGMENT, n_controls))
        for k, offset in enumerate((-1, 0, 1, 2)):
            j = s + offset
            if closed:
                block[:, idx[j % m]] += w[:, k]
            elif j < 0:  # virtual point 2*p0 - p1
                block[:, idx[0]] += 2 * w[:, k]
                block[:, idx[1]] -= w[:, k]
            elif j >= m:  # virtual point 2*p[m-1] - p[m-2]
                block[:, idx[m - 1]] += 2 * w[:, k]
                block[:, idx[m - 2]] -= w[:, k]
            else:
                block[:, idx[j]] += w[:, k]
        rows.append(block)
    if not closed:
        end = np.zeros((1, n_controls))
        end[0, idx[-1]] = 1.0
        rows.append(end)
    return np.concatenate(rows)


def compile_glyph(digit: int, variant: int) -> Glyph:
    """Compile ``VARIANTS[digit][variant]``; identical points in it become one control point."""
    strokes = VARIANTS[digit][variant]
    closed = (digit, variant) in CLOSED
    points: list[Point] = []
    for stroke in strokes:
        for piece in stroke:
            for p in piece:
                if p not in points:
                    points.append(p)
    n = len(points)
    blocks, ends = [], []
    for stroke in strokes:
        stroke_rows = []
        for k, piece in enumerate(stroke):
            rows = _catmull_rom_rows([points.index(p) for p in piece], n, closed)
            # pieces share their junction point: drop the duplicate at the start of the next one
            stroke_rows.append(rows if k == 0 else rows[1:])
        blocks.append(np.concatenate(stroke_rows))
        ends.append(sum(len(b) for b in blocks))
    return Glyph(digit, variant, np.array(points, dtype=np.float64), np.concatenate(blocks), tuple(ends), closed)


#: Every variant compiled once: GLYPHS[digit][variant].
GLYPHS: tuple[tuple[Glyph, ...], ...] = tuple(
    tuple(compile_glyph(d, v) for v in range(len(VARIANTS[d]))) for d in range(10)
)
