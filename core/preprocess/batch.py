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

from collections.abc import Callable, Hashable

import cv2
import numpy as np

from core.preprocess.cv_exact import fma_rows_inplace, fma_values

SIDE = 28
IMAGE_PIXELS = SIDE * SIDE
IDENTITY_LUT = np.arange(256, dtype=np.float32)


class Workspace:
    """Scratch buffers one thread reuses from chunk to chunk (fresh memory costs page faults)."""

    def __init__(self) -> None:
        self._buffers: dict[Hashable, np.ndarray] = {}

    def take(self, key: Hashable, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """An uninitialised array of ``shape``, backed by the buffer kept under (key, dtype)."""
        size = int(np.prod(shape))
        buf = self._buffers.get((key, dtype))
        if buf is None or buf.size < size:
            buf = self._buffers[(key, dtype)] = np.empty(size, dtype)
        return buf[:size].reshape(shape)


class Batch:
    """n images in a tall or wide buffer (see the module docstring); steps update it in place."""

    def __init__(
        self,
        data: np.ndarray,
        n: int,
        pad: int,
        layout: str = "tall",
        lut: np.ndarray | None = None,
        affine: tuple[np.ndarray, np.ndarray] | None = None,
        workspace: Workspace | None = None,
        slot: str = "main",
    ) -> None:
        self.data = data
        self.n = n
        self.pad = pad
        self.cell = SIDE + pad
        self.layout = layout
        self.lut = lut
        self.affine = affine
        self.workspace = workspace or Workspace()
        self.slot = slot
        #: Codes never exceed this (lets write_into skip the table when it is a plain scale).
        self.max_code = 255
        self._spare: np.ndarray | None = None

    @classmethod
    def from_images(cls, x: np.ndarray, pad: int, workspace: Workspace | None = None, slot: str = "main") -> Batch:
        """A tall batch holding x: uint8 images become codes with the identity table, others float32.

        Buffers come from ``workspace`` under ``slot``: a batch alive at the same time as another
        from the same workspace needs its own slot.
        """
        n = len(x)
        coded = x.dtype == np.uint8
        workspace = workspace or Workspace()
        data = workspace.take((slot, 0), (n * (SIDE + pad), SIDE), np.uint8 if coded else np.float32)
        data.reshape(n, SIDE + pad, SIDE)[:, :SIDE] = x
        batch = cls(data, n, pad, "tall", IDENTITY_LUT.copy() if coded else None, None, workspace, slot)
        batch.fill_pads(0)
        return batch

    # ----- views -------------------------------------------------------------------------------
    @property
    def coded(self) -> bool:
        """True while the buffer holds uint8 codes rather than float32 values."""
        return self.lut is not None

    @property
    def table(self) -> np.ndarray:
        """The code table, value per code (a coded batch only)."""
        assert self.lut is not None, "the batch holds values, not codes"
        return self.lut

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
            self._spare = self.workspace.take((self.slot, 1), (self.data.size,), self.data.dtype.type)
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
            self.data.reshape(self.n, self.cell * SIDE)[:, SIDE * SIDE :] = value
        else:
            columns = self.data.reshape(SIDE * self.n, self.cell)
            for j in range(SIDE, self.cell):  # one long strided run per separator column: fast
                columns[:, j] = value

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
        self.max_code = len(values) - 1

    def code_values(self, codes: np.ndarray) -> np.ndarray:
        """The float32 value of ``codes[i]`` in image i (lut, then the affine map if any)."""
        return self.code_values_of(np.arange(self.n), codes)

    def code_values_of(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The float32 value of ``codes[k]`` in image ``images[k]``."""
        values = self.table[codes]
        if self.affine is not None:
            scale, shift = self.affine
            values = fma_values(values, scale[images], shift[images])
        return values

    def binarize(
        self,
        passes: Callable[[np.ndarray], np.ndarray],
        value_pass: float | np.floating,
        value_fail: float | np.floating,
        guess: np.ndarray | None = None,
    ) -> None:
        """Coded batch: pixels whose value passes the test get value_pass, the others value_fail.

        ``passes`` maps float32 values to booleans and must be monotone (False then True as values
        grow). Values grow with the code in every image, so each image has a first passing code
        (256: none). ``guess`` (per image) is checked with two evaluations; images where it is
        wrong get a vectorised binary search. One comparison per pixel then sets the new codes.
        """
        first = self._first_passing_code(passes, guess)
        self.to_tall()
        rows = self.data.reshape(self.n, -1)
        dst = self._spare_like()
        out_rows = dst.reshape(self.n, -1)
        # Most images share one cut-off code (same min and max): one cv2 pass over all of them,
        # "code > first - 1" (uint8 thresholds are whole numbers; -1 passes all, 255 none)...
        cuts, counts = np.unique(first, return_counts=True)
        common = int(cuts[np.argmax(counts)])
        kind = cv2.THRESH_BINARY if value_pass >= value_fail else cv2.THRESH_BINARY_INV
        _into(cv2.threshold(self.data, common - 1, 1, kind, dst=dst)[1], dst)
        # ...then the few images with another cut-off, row by row.
        others = np.flatnonzero(first != common)
        if others.size:
            passed = rows[others] >= np.minimum(first[others], 255)[:, None]
            passed[first[others] == 256] = False
            out_rows[others] = passed if kind == cv2.THRESH_BINARY else ~passed
        self._swap(dst)
        low, high = sorted((np.float32(value_pass), np.float32(value_fail)))
        self.lut = np.full(256, high, np.float32)
        self.lut[0] = low
        self.affine = None
        self.max_code = 1

    def _first_passing_code(self, passes: Callable[[np.ndarray], np.ndarray], guess: np.ndarray | None) -> np.ndarray:
        n = self.n

        def test(codes: np.ndarray) -> np.ndarray:
            return np.asarray(passes(self.code_values(np.clip(codes, 0, 255))), bool)

        lo, hi = np.zeros(n, np.int64), np.full(n, 256, np.int64)
        if guess is not None:
            first = np.clip(np.asarray(guess, np.int64), 0, 256)
            right = ((first == 256) | test(first)) & ((first == 0) | ~test(first - 1))
            lo, hi = np.where(right, first, lo), np.where(right, first, hi)
        while np.any(lo < hi):
            todo = np.flatnonzero(lo < hi)
            mid = (lo[todo] + hi[todo]) // 2
            sub_ok = np.asarray(passes(self.code_values_of(todo, mid)), bool)
            hi[todo] = np.where(sub_ok, mid, hi[todo])
            lo[todo] = np.where(sub_ok, lo[todo], mid + 1)
        return lo

    def materialize(self) -> None:
        """Turn codes into float32 values (no-op for a float batch)."""
        if not self.coded:
            return
        self.to_tall()
        values = self.workspace.take((self.slot, 0), self.data.shape, np.float32)
        self._decode_into(self.data.reshape(self.n, -1), values.reshape(self.n, -1))
        self.data, self._spare = values, None
        self.lut, self.affine = None, None

    def _decode_into(self, codes: np.ndarray, out: np.ndarray) -> None:
        """out (float32, one row per image) = the values of codes (uint8, the same shape)."""
        factor = self._code_factor()
        if factor is None:
            _into(cv2.LUT(codes, self.table, dst=out), out)
        else:
            # value = code * factor exactly: numpy's SIMD cast beats cv2.LUT's gather 3x here
            np.copyto(out, codes)
            if factor != 1:
                out *= factor
        if self.affine is not None:
            fma_rows_inplace(out, *self.affine)

    # ----- sub-batches and output ----------------------------------------------------------------
    def select(self, idx: np.ndarray) -> Batch:
        """A new batch with copies of the images ``idx`` as stored (codes or values): for morphology only."""
        self.to_tall()
        slot = self.slot + "/sub"
        rows = self.workspace.take((slot, 0), (len(idx), self.cell * SIDE), self.data.dtype.type)
        np.take(self.data.reshape(self.n, -1), idx, axis=0, out=rows)  # images with their separators
        return Batch(rows.reshape(-1, SIDE), len(idx), self.pad, "tall", self.lut, None, self.workspace, slot)

    def put(self, idx: np.ndarray, sub: Batch) -> None:
        """Write the images of ``sub`` (made by ``select(idx)``) back in place of images ``idx``."""
        sub.to_tall()
        self.to_tall()
        self.data.reshape(self.n, -1)[idx] = sub.data.reshape(sub.n, -1)

    def write_into(self, out: np.ndarray) -> None:
        """Decode the images as float32 into ``out`` (shape (n, 28, 28), C-contiguous)."""
        rows = self.image_rows()
        flat = out.reshape(self.n, IMAGE_PIXELS)
        if self.coded:
            self._decode_into(rows, flat)
        else:
            flat[...] = rows

    def _code_factor(self) -> np.float32 | None:
        """a if the table is exactly float32(code) * a for every code in use, else None."""
        if not self.coded or self.max_code < 1:
            return None
        used = self.table[: self.max_code + 1]
        factor = used[1]
        expected = np.arange(self.max_code + 1, dtype=np.float32) * factor
        return factor if np.array_equal(used.view(np.uint32), expected.view(np.uint32)) else None

    def images(self) -> np.ndarray:
        """A new float32 (n, 28, 28) array of the current images."""
        out = np.empty((self.n, SIDE, SIDE), np.float32)
        self.write_into(out)
        return out


def _into(result: np.ndarray, dst: np.ndarray) -> None:
    """cv2 writes into a given dst when its shape and type fit; copy in the rare case it did not."""
    if result is not dst and not np.shares_memory(result, dst):
        dst[...] = result
