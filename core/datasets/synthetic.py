"""The embedded default dataset: synthetic handwritten Arabic-Indic digits in the AHDD layout.

AHDD (El-Sawy, Loey and El-Bakry) has 700 writers who each wrote every digit ten times; its images
are binary (0 or 255), white on black, each digit scaled to fit a 20 px box and centred by centre of
mass in 28x28, so a written ٠ (a small dot) becomes a large blob and some writers' strokes come out
as hollow outlines. This module draws look-alikes: each *writer* gets style parameters (pen width,
slant, tilt, aspect, shape habits, how often their strokes get the hollow-outline "halo") and
writes 100 images, labels cycling 0..9 as AHDD's ids do; train and test writers are different
people (different seed streams).

Drawing a digit: jitter the control points of a stroke skeleton from `core.datasets.glyphs`,
sample the splines, bend them with a smooth random displacement, apply the writer's affine style,
draw with OpenCV at 4x resolution in a box that the ink exactly fills (with a dotted halo for
some), count 4x4 blocks down to 20x20, threshold to binary, and paste into 28x28 so the centre of
mass lands where AHDD's does.

Everything is a pure function of (seed, split, writer index), so output is bit-for-bit
reproducible. The per-image work is vectorised over the ten copies of a digit a writer makes; only
the OpenCV drawing calls run per image, so one process draws the full 70,000 images in a few seconds.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.datasets.dataset import ARABIC_CLASS_NAMES, Dataset
from core.datasets.glyphs import GLYPHS, NATURAL_SIZE, SHAPE_FREEDOM, Glyph
from core.errors import DigitLabError
from core.settings import settings

#: Bump whenever the drawing changes, so cached copies made by older code are not reused.
GENERATOR_VERSION = 2
#: Named sizes: (train images, test images). "full" is AHDD's 60,000 + 10,000.
SIZES: dict[str, tuple[int, int]] = {"full": (60000, 10000), "small": (6000, 1000), "tiny": (600, 100)}
DEFAULT_SEED = 0
NAME = "synthetic AHDD"

IMAGES_PER_WRITER = 100  # AHDD: every writer wrote each digit ten times
WRITERS_PER_CHUNK = 10  # writers drawn together (one unit of work)
SUPERSAMPLE = 4  # drawing resolution relative to the final pixels
BOX = 20  # the digit's longer side, in final pixels
SIDE = 28
COM_TARGET = 13.1  # where AHDD's centre of mass sits (0-based row/column), measured
INK_THRESHOLD = 0.3  # a final pixel is ink when this fraction of its 4x4 sub-pixels is
GRAIN = 0.2  # +- noise on that fraction: ragged edges, never a speck on blank paper

_SPLITS = {"train": 1, "test": 2}
#: Which digit a slip of the pen turns a digit into: look-alike pairs (٢/٣, ٧/٨, ٠/٥, ١/٩ ...).
_SLIP_PARTNER = (5, 9, 3, 2, 3, 0, 2, 8, 7, 1)
_SLIP_RATE = 0.004
COMMON_VARIANT = 0.6  # share of writers who write a digit its most common way
HALO_BETA = (1.5, 0.7)  # writers' halo rates: Beta-distributed, mean about 0.68
#: How often a halo shows on each digit relative to the writer's rate: AHDD's small-written digits
#: (٥, ٠, ٧) were enlarged most and show it most; the tall ١ and ٦ hardly ever.
HALO_AFFINITY = (0.6, 0.05, 0.4, 0.2, 0.15, 1.0, 0.05, 0.45, 0.3, 0.25)
HALO_THRESHOLD = 0.4  # a pixel can carry halo when this fraction of it is halo
HALO_FILL = 0.6  # besides a checkerboard half, this share of halo pixels is ink


@dataclass(frozen=True)
class WriterStyle:
    """One writer's habits, shared by all 100 images they write.

    Lengths are in page units (a tall ١ is 1 unit high) unless said otherwise; angles in radians.
    """

    pen: float  # pen width
    slant: float  # horizontal shear: > 0 leans the top to the right
    tilt: float  # rotation of the whole digit
    aspect: float  # horizontal stretch
    jitter: float  # per-image noise of control points (unit-box units)
    wobble: float  # amplitude of the smooth per-image displacement
    halo_rate: float  # how often their images get a halo (times HALO_AFFINITY of the digit)
    halo_gap: float  # final pixels between the stroke and its halo
    halo_width: float  # final pixels of the halo line
    variants: tuple[int, ...]  # which variant of each digit they write
    habits: tuple[np.ndarray, ...]  # per digit: fixed offsets of its control points
    zero_aspect: float  # how elongated their dot (٠) is
    zero_angle: float  # and at what angle
    zero_ring: bool  # writes ٠ as a small ring with a hole rather than a filled dot


def draw_writer(rng: np.random.Generator) -> WriterStyle:
    """A random writer."""
    # the first variant of a digit is the common way to write it; the others share the rest
    variants = tuple(
        0 if rng.random() < COMMON_VARIANT or len(GLYPHS[d]) == 1 else int(rng.integers(1, len(GLYPHS[d])))
        for d in range(10)
    )
    habits = tuple(rng.normal(0.0, 0.07, GLYPHS[d][variants[d]].controls.shape) for d in range(10))
    return WriterStyle(
        pen=float(np.clip(0.13 * rng.lognormal(0.0, 0.25), 0.07, 0.26)),
        slant=float(rng.normal(0.0, 0.1)),
        tilt=float(rng.normal(0.0, 0.07)),
        aspect=float(rng.lognormal(0.03, 0.22)),
        jitter=float(rng.uniform(0.02, 0.055)),
        wobble=float(rng.uniform(0.0, 0.05)),
        halo_rate=float(rng.beta(HALO_BETA[0], HALO_BETA[1])),
        halo_gap=float(rng.uniform(0.8, 1.2)),
        halo_width=float(rng.uniform(0.8, 1.2)),
        variants=variants,
        habits=habits,
        zero_aspect=float(rng.uniform(0.15, 0.6)),
        zero_angle=float(rng.normal(-0.4, 0.7)),
        zero_ring=bool(rng.random() < 0.15),
    )


def _digit_points(glyph: Glyph, style: WriterStyle, rng: np.random.Generator, n: int) -> np.ndarray:
    """Curve points (n, P, 2) in page units for n copies of ``glyph`` by one writer."""
    freedom = SHAPE_FREEDOM[glyph.digit]
    noise = rng.normal(0.0, style.jitter, (n,) + glyph.controls.shape)
    controls = glyph.controls + freedom * (style.habits[glyph.digit] + noise)
    pts = glyph.curve(controls)
    # smooth random displacement: two plane waves per image
    freq = rng.normal(0.0, 1.2, (n, 2, 2))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 2))
    amp = rng.normal(0.0, style.wobble * freedom, (n, 2, 2))
    waves = np.sin(2 * np.pi * np.einsum("npd,nkd->npk", pts, freq) + phase[:, None, :])
    pts = pts + np.einsum("npk,nkd->npd", waves, amp) - 0.5
    x, y = pts[..., 0], pts[..., 1]
    if glyph.digit == 0:
        y = y * np.clip(style.zero_aspect * rng.lognormal(0.0, 0.15, (n, 1)), 0.12, 1.0)
        angle = style.zero_angle + rng.normal(0.0, 0.35, (n, 1))
        x, y = x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)
    x = x * style.aspect * rng.lognormal(0.0, 0.08, (n, 1))
    x = x - (style.slant + rng.normal(0.0, 0.04, (n, 1))) * y
    tilt = style.tilt + rng.normal(0.0, 0.04, (n, 1))
    x, y = x * np.cos(tilt) - y * np.sin(tilt), x * np.sin(tilt) + y * np.cos(tilt)
    size = NATURAL_SIZE[glyph.digit] * rng.lognormal(0.0, 0.08, (n, 1, 1))
    return np.stack([x, y], axis=-1) * size


@dataclass(frozen=True)
class Ink:
    """How n digits are inked: all arrays have n rows (or n leading entries)."""

    pens: np.ndarray  # pen width, page units
    filled: np.ndarray  # fill the closed shape (the dot ٠)
    gap: np.ndarray  # final pixels between stroke and halo; 0 where there is no halo
    halo: np.ndarray  # final pixels of halo line; 0 where there is no halo
    grain: np.ndarray  # (n, BOX, BOX) noise added to each pixel's ink fraction
    dots: np.ndarray  # (n, BOX, BOX) which halo pixels survive


_CORE, _HALO = 17, 1  # canvas values: a 4x4 block's sum splits back into both counts (16 < 17)


def _block_sums(canvas: np.ndarray) -> np.ndarray:
    """Sums of the 4x4 blocks of a uint8 (n, 4*BOX, 4*BOX) canvas whose pixels are at most _CORE.

    Four neighbouring bytes of a row read as one uint32 word; multiplying by 0x01010101 adds them
    into the top byte (they total at most 4 * 17 < 256, so nothing carries out). That is several
    times faster than numpy's reduction over the small strided block axes; it relies on
    SUPERSAMPLE being 4 (one word per block row) and on a C-contiguous canvas.
    """
    n = len(canvas)
    rows = (canvas.view(np.uint32) * np.uint32(0x01010101)) >> np.uint32(24)  # (n, 4*BOX, BOX)
    rows = rows.reshape(n, BOX, SUPERSAMPLE, BOX)
    return rows[:, :, 0] + rows[:, :, 1] + rows[:, :, 2] + rows[:, :, 3]


def _rasterise(glyph: Glyph, pts: np.ndarray, ink: Ink) -> np.ndarray:
    """Draw each digit so its ink fills a BOX x BOX box: returns binary uint8 (n, BOX, BOX), 0/1.

    The stroke is drawn at SUPERSAMPLE times the final resolution; a pixel is ink when enough of
    its sub-pixels are (plus grain, so edges come out ragged like a binarised scan). A *halo* is
    AHDD's hollow-outline artefact (ringing from enlarging small crops, so most frequent on digits
    written small): a dotted line one pixel away from the stroke, which makes a stroke look like
    an outline or a double line.
    """
    n = len(pts)
    hi = BOX * SUPERSAMPLE
    lo = pts.min(axis=1)
    span = pts.max(axis=1) - lo + ink.pens[:, None]
    # the stroke fills the box; a halo past the box edge is cut off, as when AHDD's crops were
    # enlarged with a ringing filter
    scale = hi / span.max(axis=1)  # hi-res pixels per page unit
    pad = (hi - span * scale[:, None]) / 2
    # 8 sub-pixel steps (shift=3) so positions are not rounded to whole hi-res pixels
    coords = np.rint(
        ((pts - lo[:, None] + ink.pens[:, None, None] / 2) * scale[:, None, None] + pad[:, None]) * 8
    ).astype(np.int32)
    core = np.maximum(1, np.rint(ink.pens * scale)).astype(int)
    inner = core + np.rint(2 * SUPERSAMPLE * ink.gap).astype(int)
    outer = inner + np.rint(2 * SUPERSAMPLE * ink.halo).astype(int)
    canvas = np.zeros((n, hi, hi), np.uint8)
    starts = (0,) + glyph.stroke_ends[:-1]
    for i in range(n):
        strokes = [coords[i, a:b] for a, b in zip(starts, glyph.stroke_ends)]
        img = canvas[i]
        # halo band, then the gap cleared inside it, then the stroke itself
        layers = ((_HALO, outer[i]), (0, inner[i]), (_CORE, core[i])) if outer[i] > core[i] else ((_CORE, core[i]),)
        for value, width in layers:
            if ink.filled[i]:
                cv2.fillPoly(img, strokes, value, cv2.LINE_8, 3)
            cv2.polylines(img, strokes, glyph.closed, value, int(width), cv2.LINE_8, 3)
    sums = _block_sums(canvas)
    area = np.float32(SUPERSAMPLE**2)
    solid = (sums // _CORE).astype(np.float32) / area + ink.grain >= INK_THRESHOLD
    halo = ((sums % _CORE).astype(np.float32) / area >= HALO_THRESHOLD) & ink.dots
    return (solid | halo).astype(np.uint8)


def _centre(boxes: np.ndarray) -> np.ndarray:
    """Paste BOX x BOX binary digits into 28x28 images (0/255) with the centre of mass at COM_TARGET."""
    n = len(boxes)
    ink = boxes.reshape(n, BOX, BOX).astype(np.float64)
    mass = np.maximum(ink.sum(axis=(1, 2)), 1.0)
    idx = np.arange(BOX, dtype=np.float64)
    com_y = (ink.sum(axis=2) @ idx) / mass
    com_x = (ink.sum(axis=1) @ idx) / mass
    top = np.clip(np.rint(COM_TARGET - com_y), 0, SIDE - BOX).astype(int)
    left = np.clip(np.rint(COM_TARGET - com_x), 0, SIDE - BOX).astype(int)
    out = np.zeros((n, SIDE, SIDE), np.uint8)
    for i in range(n):
        out[i, top[i] : top[i] + BOX, left[i] : left[i] + BOX] = boxes[i] * 255
    return out


def write_digits(style: WriterStyle, digit: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images (n, 28, 28) of ``digit`` as written by ``style``'s writer."""
    glyph = GLYPHS[digit][style.variants[digit]]
    pts = _digit_points(glyph, style, rng, n)
    pens = style.pen * rng.lognormal(0.0, 0.08, n)
    filled = np.zeros(n, bool)
    if digit == 0:
        # a filled dot (the pen only rounds its outline); or a ring whose pen is a fraction of the
        # dot's short side
        short = (pts.max(axis=1) - pts.min(axis=1)).min(axis=1)
        filled[:] = not style.zero_ring
        pens = np.where(filled, pens / 1.5, short * rng.uniform(0.3, 0.45, n))
    has_halo = rng.random(n) < style.halo_rate * HALO_AFFINITY[digit]
    checker = (np.add.outer(np.arange(BOX), np.arange(BOX)) % 2).astype(bool)
    parity = rng.random(n) < 0.5
    ink = Ink(
        pens=pens,
        filled=filled,
        gap=np.where(has_halo, style.halo_gap, 0.0),
        halo=np.where(has_halo, style.halo_width, 0.0),
        grain=(rng.random((n, BOX, BOX), dtype=np.float32) - np.float32(0.5)) * np.float32(2 * GRAIN),
        dots=(checker[None] ^ parity[:, None, None]) | (rng.random((n, BOX, BOX), dtype=np.float32) < HALO_FILL),
    )
    return _centre(_rasterise(glyph, pts, ink))


def write_page(seed: int, split: str, writer: int) -> tuple[np.ndarray, np.ndarray]:
    """All 100 images (uint8 (100, 28, 28)) and labels of one writer, a pure function of its args."""
    rng = np.random.default_rng([seed, _SPLITS[split], writer])
    style = draw_writer(rng)
    labels = np.arange(IMAGES_PER_WRITER) % 10
    # a few slips of the pen: the writer draws a confusable digit under the intended label
    drawn = np.where(rng.random(IMAGES_PER_WRITER) < _SLIP_RATE, np.take(_SLIP_PARTNER, labels), labels)
    images = np.empty((IMAGES_PER_WRITER, SIDE, SIDE), np.uint8)
    for digit in range(10):
        where = np.flatnonzero(drawn == digit)
        if len(where):
            images[where] = write_digits(style, digit, len(where), rng)
    return images, labels


def _write_chunk(seed: int, split: str, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    pages = [write_page(seed, split, w) for w in range(first, first + count)]
    return np.concatenate([p[0] for p in pages]), np.concatenate([p[1] for p in pages])


def _write_split(seed: int, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    writers = math.ceil(n / IMAGES_PER_WRITER)
    firsts = range(0, writers, WRITERS_PER_CHUNK)
    counts = [min(WRITERS_PER_CHUNK, writers - f) for f in firsts]
    args = ([seed] * len(counts), [split] * len(counts), list(firsts), counts)
    chunks = list(map(_write_chunk, *args))
    x = np.concatenate([c[0] for c in chunks])[:n]
    y = np.concatenate([c[1] for c in chunks])[:n]
    return x, y


def _check_count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DigitLabError(f"{what} must be a positive whole number, got {value!r}", NAME)
    return int(value)


def generate(n_train: int, n_test: int, seed: int = DEFAULT_SEED) -> Dataset:
    """Draw a synthetic AHDD: ``n_train`` images by train writers, ``n_test`` by other writers.

    Deterministic: the same arguments give the same arrays bit for bit, and a smaller ``n_train``
    gives a prefix of a larger one. One process draws the full 70,000 images in a few seconds; a
    server draws them in the background as a task (core.execution.dataset_fill), never in a
    process of its own making.
    """
    n_train = _check_count(n_train, "n_train")
    n_test = _check_count(n_test, "n_test")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DigitLabError(f"seed must be a non-negative whole number, got {seed!r}", NAME)
    train, test = _write_split(seed, "train", n_train), _write_split(seed, "test", n_test)
    return Dataset(NAME, train[0], train[1], test[0], test[1], ARABIC_CLASS_NAMES)


def cache_path(size: str, cache_dir: Path | None = None, seed: int = DEFAULT_SEED) -> Path:
    """Where `default_dataset` keeps the ``size`` copy (the name holds every parameter)."""
    if size not in SIZES:
        raise DigitLabError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}", NAME)
    n_train, n_test = SIZES[size]
    root = Path(cache_dir) if cache_dir is not None else settings().cache_dir
    return root / "synthetic" / f"ahdd-v{GENERATOR_VERSION}-seed{seed}-{n_train}x{n_test}.npz"


def _load(path: Path, name: str) -> Dataset:
    with np.load(path, allow_pickle=False) as npz:
        return Dataset(name, npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"], ARABIC_CLASS_NAMES)


def save_cache(ds: Dataset, path: Path) -> None:
    """Write atomically: a reader sees the old file, no file, or the whole new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is an ordinary shared file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_dataset(size: str = "full", cache_dir: Path | None = None) -> Dataset:
    """The default dataset at a named size: generated once, then loaded from an .npz cache.

    The cache lives in ``(cache_dir or settings().cache_dir) / "synthetic"``. A cached file that is
    unreadable or holds other counts is drawn again; a cache folder that cannot be written only
    costs a warning.
    """
    path = cache_path(size, cache_dir)
    name = f"{NAME} ({size})"
    if path.is_file():
        try:
            cached = _load(path, name)
            if (len(cached.x_train), len(cached.x_test)) == SIZES[size]:
                return cached
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, DigitLabError):
            pass  # damaged or foreign file: draw it again below and replace it
    ds = generate(*SIZES[size], seed=DEFAULT_SEED)
    ds = Dataset(name, ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.class_names)
    try:
        save_cache(ds, path)
    except OSError as err:
        warnings.warn(f"{path}: could not cache the synthetic dataset ({err})", stacklevel=2)
    return ds
