"""Datasets available without an upload: the synthetic default, and Fashion-MNIST when installed.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package (``apt-get install
dataset-fashion-mnist``), which puts the four gzipped IDX files in ``/usr/share/datasets/fashion-mnist``.
The synthetic module is imported only when needed, so the loaders work without it.
"""

from __future__ import annotations

from pathlib import Path

from core.datasets import idx
from core.datasets.dataset import Dataset, first_subset
from core.datasets.sources import FolderFiles
from core.errors import DigitLabError

DEFAULT = "default"
FASHION_MNIST = "fashion-mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: The size names of ``core.datasets.synthetic.SIZES``, known without importing it (for CLI choices).
SIZE_NAMES = ("full", "small", "tiny")


def sizes() -> dict[str, tuple[int, int]]:
    """``{size name: (train count, test count)}``, as the synthetic default defines them."""
    from core.datasets.synthetic import SIZES

    return SIZES


def fashion_mnist_installed() -> bool:
    """True when the four Fashion-MNIST IDX files (gzipped or not) are in ``FASHION_MNIST_DIR``."""
    return all(
        (FASHION_MNIST_DIR / f"{name}.gz").is_file() or (FASHION_MNIST_DIR / name).is_file()
        for name in idx.EXPECTED_FILES.values()
    )


def ready_datasets() -> list[str]:
    """Names that ``load_ready`` accepts on this machine."""
    return [DEFAULT] + ([FASHION_MNIST] if fashion_mnist_installed() else [])


def take_size(ds: Dataset, size: str) -> Dataset:
    """``ds`` cut down to a named size ("full" keeps it whole), balanced across classes when possible."""
    if size == "full":
        return ds
    table = sizes()
    if size not in table:
        raise DigitLabError(f"unknown size {size!r}; choose one of {', '.join(table)}")
    return first_subset(ds, *table[size])


def load_ready(name: str, size: str = "full") -> Dataset:
    """A ready dataset by name, at one of the sizes "full", "small" or "tiny"."""
    if size not in SIZE_NAMES:
        raise DigitLabError(f"unknown size {size!r}; choose one of {', '.join(SIZE_NAMES)}")
    if name == DEFAULT:
        from core.datasets.synthetic import default_dataset

        return default_dataset(size)
    if name == FASHION_MNIST and fashion_mnist_installed():
        folder = FASHION_MNIST_DIR
        ds = idx.load(FolderFiles(folder), str(folder), FASHION_MNIST, FASHION_MNIST_CLASS_NAMES)
        return take_size(ds, size)
    raise DigitLabError(f"unknown dataset {name!r}; ready ones here: {', '.join(ready_datasets())}")
