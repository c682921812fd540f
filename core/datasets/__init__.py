"""Datasets: the Dataset value, loaders for AHDD CSV, MNIST IDX, NPZ and PNG trees, ready datasets.

Typical use::

    from core.datasets import load_path, load_ready, summary_lines
    ds = load_path("ahdd.zip")            # or a folder, an .npz, or the four files
    ds = load_ready("default", "small")   # the synthetic AHDD-like dataset
    print("\\n".join(summary_lines(ds)))
"""

from core.datasets.dataset import (
    ARABIC_CLASS_NAMES,
    WESTERN_CLASS_NAMES,
    Dataset,
    class_counts,
    first_subset,
    parse_class_names,
    summary_lines,
    with_class_names,
)
from core.datasets.detect import load_files, load_from_data_dir, load_path
from core.datasets.registry import FASHION_MNIST_CLASS_NAMES, SIZE_NAMES, load_ready, ready_datasets, take_size
from core.datasets.specs import (
    DatasetSpec,
    Upload,
    dataset_owners,
    delete_upload,
    display_spec,
    load_spec,
    ready_specs,
    save_upload,
    upload_owners,
    upload_usage,
    uploads,
    versions,
)

__all__ = [
    "ARABIC_CLASS_NAMES",
    "FASHION_MNIST_CLASS_NAMES",
    "SIZE_NAMES",
    "WESTERN_CLASS_NAMES",
    "Dataset",
    "DatasetSpec",
    "class_counts",
    "display_spec",
    "parse_class_names",
    "with_class_names",
    "first_subset",
    "load_files",
    "load_from_data_dir",
    "load_path",
    "load_ready",
    "load_spec",
    "ready_datasets",
    "ready_specs",
    "save_upload",
    "summary_lines",
    "take_size",
    "upload_owners",
    "dataset_owners",
    "versions",
    "Upload",
    "delete_upload",
    "upload_usage",
    "uploads",
]
