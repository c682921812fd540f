"""Image grids: digits are 28 pixels, so they are enlarged without smoothing before display."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import streamlit as st

from core.text import escape


def to_display(img: np.ndarray, scale: int = 3) -> np.ndarray:
    """A uint8 image enlarged by ``scale`` with nearest-neighbour, whatever the input range."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = float(img.min()), float(img.max())
    # Pipelines output 0..1 or 0..255; show each image on its own full range.
    if hi > lo:
        img = (img - lo) * (255.0 / (hi - lo)) if (lo < 0 or hi > 255 or hi <= 1.0) else img
    out = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def show_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    captions: Sequence[str],
    columns: int = 10,
    scale: int = 3,
    notes: Sequence[Sequence[str]] | None = None,
) -> None:
    """Show images in rows of ``columns`` with a caption under each, and under that, when given,
    each image's ``notes`` one per line (plain text, shown small). Captions and notes are text from
    data (class names): both are shown literally."""
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for i, (col, img, cap) in enumerate(
            zip(cols, images[start : start + columns], captions[start : start + columns])
        ):
            shown = to_display(img, scale)
            # Its own width: a long caption (a skipped step's) must not stretch the image with it.
            col.image(shown, caption=escape(cap), output_format="PNG", width=shown.shape[1])
            if notes is not None:
                col.caption("  \n".join(escape(line) for line in notes[start + i]))
