"""The working state of a chunk of images while a pipeline runs, laid out for whole-batch cv2 calls.

Layout. All images of a chunk live in ONE 2-D buffer, each image followed by ``pad`` separator
lines, so a single cv2 call processes the whole chunk:

* ``tall``: images stacked vertically, shape ``(n * cell, 28)`` with ``cell = 28 + pad``. Loading
  from an ``(n, 28, 28)`` array is a cheap copy and every image's pixels are one contiguous run.
* ``wide``: the transpose, ``(28, n * cell)``: every image transposed and placed side by side.
  OpenCV's SIMD morphology is ~10x faster on these long rows than on 28-pixel ones, so morphology
  runs here with the transposed kernel (erosion of I^T by K^T equals (erosion of I by K)^T; the
  default centre anchor transposes with it). cv2.transpose switches layouts quickly.

Before a call that looks at neighbours, the separators are filled with a value that cannot change
the result at image borders: the largest value for erosion and the smallest for dilation (what
OpenCV's default constant border does per image), or reflected rows for a Gaussian blur
(BORDER_REFLECT_101). They are refilled before each pass, so results equal per-image calls.

Values. A chunk is either float32 values, or uint8 *codes* with a float32 look-up table ``lut``
(256 entries, non-decreasing) and optionally a per-image affine map ``(scale, shift)`` applied
after it, value = fma(lut[code], scale[i], shift[i]) rounded to float32 as cv2.normalize does.
Erosion and dilation take minima and maxima, which commute with non-decreasing maps, so they run
on the codes (4x less memory traffic than float32). Elementwise steps rewrite the table;
``materialize`` turns codes into float32 values when a step needs them.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from core.preprocess.cv_exact import fma_rows, fma_values

SIDE = 28
IMAGE_PIXELS = SIDE * SIDE
IDENTITY_LUT = np.arange(256, dtype=np.float32)


class Batch:
    """n images in a tall or wide buffer (see the module docstring); steps update it in place."""

    def __init__(self, data: np.ndarray, n: int, pad: int, layout: str = "tall",
                 lut: np.ndarray | None = None,
                 affine: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.data = data
        self.n = n
        self.pad = pad
        self.cell = SIDE + pad
        self.layout = layout
        self.lut = lut
        self.affine = affine
        self._spare: np.ndarray | None = None

    @classmethod
    def from_images(cls, x: np.ndarray, pad: int) -> "Batch":
        """A tall batch holding x: uint8 images become codes with the identity table, others float32."""
        n = len(x)
        coded = x.dtype == np.uint8
        data = np.zeros((n * (SIDE + pad), SIDE), np.uint8 if coded else np.float32)
        data.reshape(n, SIDE + pad, SIDE)[:, :SIDE] = x
        return cls(data, n, pad, "tall", IDENTITY_LUT.copy() if coded else None)

    # ----- views -------------------------------------------------------------------------------
    @property
    def coded(self) -> bool:
        """True while the buffer holds uint8 codes rather than float32 values."""
        return self.lut is not None

    def tall_images(self) -> np.ndarray:
        """(n, 28, 28) view of the images (switches to the tall layout)."""
        self.to_tall()
        return self.data.reshape(self.n, self.cell, SIDE)[:, :SIDE]

    def image_rows(self) -> np.ndarray:
        """(n, 784) view: one row of pixels per image (switches to the tall layout)."""
        self.to_tall()
        return self.data.reshape(self.n, self.cell * SIDE)[:, :IMAGE_PIXELS]

    def _spare_like(self) -> np.ndarray:
        """A scratch buffer with the data's shape and dtype (reused between calls)."""
        if self._spare is None or self._spare.dtype != self.data.dtype or self._spare.size != self.data.size:
            self._spare = np.empty(self.data.size, self.data.dtype)
        return self._spare.reshape(self.data.shape)

    def _swap(self, new: np.ndarray) -> None:
        """Make ``new`` (a spare view just written) the data; the old data becomes the spare."""
        old = self.data
        self.data = new
        self._spare = old.reshape(-1)

    # ----- layout ------------------------------------------------------------------------------
    def to_wide(self) -> None:
        """Switch to the wide (transposed) layout."""
        if self.layout == "tall":
            self._transpose("wide")

    def to_tall(self) -> None:
        """Switch to the tall (upright) layout."""
        if self.layout == "wide":
            self._transpose("tall")

    def _transpose(self, layout: str) -> None:
        spare = self._spare_like().reshape(self.data.shape[::-1])
        _into(cv2.transpose(self.data, dst=spare), spare)
        self._swap(spare)
        self.layout = layout

    def fill_pads(self, value: float) -> None:
        """Set every separator line to ``value``."""
        if self.pad == 0:
            return
        if self.layout == "tall":
            self.data.reshape(self.n, self.cell, SIDE)[:, SIDE:] = value
        else:
            self.data.reshape(SIDE, self.n, self.cell)[:, :, SIDE:] = value

    def fill_reflect_pads(self, radius: int) -> None:
        """Tall layout: the first ``radius`` separator rows mirror the image above (reflect-101),
        the last ``radius`` mirror the image below, so a vertical filter sees per-image borders."""
        self.to_tall()
        cells = self.data.reshape(self.n, self.cell, SIDE)
        for j in range(radius):
            cells[:, SIDE + j] = cells[:, SIDE - 2 - j]
            cells[:-1, self.cell - 1 - j] = cells[1:, 1 + j]

    # ----- operations --------------------------------------------------------------------------
    def morph(self, op: str, kernel: np.ndarray) -> None:
        """One erosion (op "erode") or dilation ("dilate") pass with the upright kernel."""
        self.to_wide()
        if self.coded:
            self.fill_pads(255 if op == "erode" else 0)
        else:
            self.fill_pads(np.inf if op == "erode" else -np.inf)
        dst = self._spare_like()
        func = cv2.erode if op == "erode" else cv2.dilate
        _into(func(self.data, np.ascontiguousarray(kernel.T), dst=dst), dst)
        self._swap(dst)

    def filter(self, func: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Run ``func(src, dst)`` (a whole-buffer cv2 call) into the spare buffer and swap."""
        dst = self._spare_like()
        _into(func(self.data, dst), dst)
        self._swap(dst)

    def map_values(self, new_lut: np.ndarray) -> None:
        """Coded batch without affine map: every value v becomes new_lut-of-its-code.

        If the new table is not non-decreasing, the codes are renumbered by value rank (one
        cv2.LUT pass) so that erosion and dilation on codes stay exact.
        """
        new_lut = np.asarray(new_lut, np.float32).reshape(-1)
        if np.all(new_lut[1:] >= new_lut[:-1]):
            self.lut = new_lut
            return
        values = np.unique(new_lut)
        code_map = np.searchsorted(values, new_lut).astype(np.uint8)
        self.filter(lambda src, dst: cv2.LUT(src, code_map, dst=dst))
        self.lut = np.concatenate([values, np.full(256 - len(values), values[-1], np.float32)])

    def code_values(self, codes: np.ndarray) -> np.ndarray:
        """The float32 value of ``codes[i]`` in image i (lut, then the affine map if any)."""
        values = self.lut[codes]
        if self.affine is not None:
            values = fma_values(values, *self.affine)
        return values

    def binarize(self, passes: Callable[[np.ndarray], np.ndarray], value_pass: float, value_fail: float) -> None:
        """Coded batch: pixels whose value passes the test get value_pass, the others value_fail.

        ``passes`` maps float32 values to booleans and must be monotone (False then True as values
        grow). Values grow with the code in every image, so each image has a first passing code,
        found by a vectorised binary search; one comparison per pixel then sets the new codes.
        """
        n = self.n
        lo, hi = np.zeros(n, np.int64), np.full(n, 256, np.int64)
        while np.any(lo < hi):
            active = lo < hi
            mid = np.minimum((lo + hi) // 2, 255)
            ok = np.asarray(passes(self.code_values(mid)), bool)
            hi = np.where(active & ok, mid, hi)
            lo = np.where(active & ~ok, mid + 1, lo)
        self.to_tall()
        rows = self.data.reshape(n, -1)
        dst = self._spare_like()
        mask = dst.reshape(n, -1).view(bool)
        np.greater_equal(rows, np.minimum(lo, 255).astype(np.uint8)[:, None], out=mask)
        mask[lo == 256] = False
        if value_pass < value_fail:
            np.logical_not(mask, out=mask)
        self._swap(dst)
        low, high = sorted((np.float32(value_pass), np.float32(value_fail)))
        self.lut = np.full(256, high, np.float32)
        self.lut[0] = low
        self.affine = None

    def materialize(self) -> None:
        """Turn codes into float32 values (no-op for a float batch)."""
        if not self.coded:
            return
        if self.affine is not None:
            self.to_tall()
        values = cv2.LUT(self.data, self.lut)
        if self.affine is not None:
            rows = values.reshape(self.n, -1)[:, :IMAGE_PIXELS]
            rows[...] = fma_rows(rows, *self.affine)
        self.data, self._spare = values, None
        self.lut, self.affine = None, None

    # ----- sub-batches and output ----------------------------------------------------------------
    def select(self, idx: np.ndarray) -> "Batch":
        """A new batch with copies of the images ``idx`` (same table, no affine map: for morphology)."""
        images = self.tall_images()[idx]
        data = np.zeros((len(idx) * self.cell, SIDE), self.data.dtype)
        data.reshape(len(idx), self.cell, SIDE)[:, :SIDE] = images
        return Batch(data, len(idx), self.pad, "tall", self.lut)

    def put(self, idx: np.ndarray, sub: "Batch") -> None:
        """Write the images of ``sub`` (made by ``select(idx)``) back in place of images ``idx``."""
        self.tall_images()[idx] = sub.tall_images()

    def write_into(self, out: np.ndarray) -> None:
        """Decode the images as float32 into ``out`` (shape (n, 28, 28), C-contiguous)."""
        rows = self.image_rows()
        flat = out.reshape(self.n, IMAGE_PIXELS)
        if not self.coded:
            flat[...] = rows
        elif self.affine is None:
            _into(cv2.LUT(rows, self.lut, dst=flat), flat)
        else:
            flat[...] = fma_rows(cv2.LUT(rows, self.lut), *self.affine)

    def images(self) -> np.ndarray:
        """A new float32 (n, 28, 28) array of the current images."""
        out = np.empty((self.n, SIDE, SIDE), np.float32)
        self.write_into(out)
        return out


def _into(result: np.ndarray, dst: np.ndarray) -> None:
    """cv2 writes into a given dst when its shape and type fit; copy in the rare case it did not."""
    if result is not dst and not np.shares_memory(result, dst):
        dst[...] = result
