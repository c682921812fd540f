"""How big a dataset from files may be: images and inflated bytes, checked before inflating.

A 6 MB upload can declare 1,360,000 images (a gigabyte of zeros): every reader checks what a
file declares (an NPZ member's ``.npy`` header, an IDX header, a CSV's line count, a PNG tree's
file count, a zip's member sizes) against these bounds before it allocates or inflates, so a
refused file costs little memory and a loaded one about its final array.

``DIGITLAB_MAX_DATASET_IMAGES`` (train and test images together, default 200,000) and
``DIGITLAB_MAX_DATASET_MB`` (inflated bytes, default 256) change them; ready datasets (the
synthetic default, Fashion-MNIST) are not bound by them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.errors import DigitLabError

DEFAULT_MAX_IMAGES = 200_000
DEFAULT_MAX_MB = 256
MIB = 1 << 20


@dataclass(frozen=True)
class DatasetBounds:
    """The largest dataset a file may hold: ``max_images`` images, ``max_bytes`` inflated bytes."""

    max_images: int = DEFAULT_MAX_IMAGES
    max_bytes: int = DEFAULT_MAX_MB * MIB

    def check_images(self, count: int, where: str | os.PathLike[str] | None = None) -> None:
        """Refuse ``count`` images (declared or found) over the image bound, naming it."""
        if count > self.max_images:
            raise DigitLabError(
                f"holds {count:,} images, more than this instance's limit of "
                f"{self.max_images:,} (DIGITLAB_MAX_DATASET_IMAGES)",
                where,
            )

    def check_bytes(self, size: int, where: str | os.PathLike[str] | None = None, what: str = "inflates to") -> None:
        """Refuse ``size`` bytes (declared or inflated) over the byte bound, naming it."""
        if size > self.max_bytes:
            raise DigitLabError(
                f"{what} {size:,} bytes, more than this instance's limit of "
                f"{self.max_bytes:,} ({self.max_bytes // MIB} MB, DIGITLAB_MAX_DATASET_MB)",
                where,
            )


def _positive_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise DigitLabError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise DigitLabError(f"{name} must be at least 1, got {value}")
    return value


def dataset_bounds() -> DatasetBounds:
    """The bounds from the environment (re-read each call, like ``core.settings``)."""
    return DatasetBounds(
        _positive_env("DIGITLAB_MAX_DATASET_IMAGES", DEFAULT_MAX_IMAGES),
        _positive_env("DIGITLAB_MAX_DATASET_MB", DEFAULT_MAX_MB) * MIB,
    )
