"""A faithful copy of the report's per-image preprocessing loops (Part X1 of its report).

Like the seed, these work in place on ``images``: a float32 (N, 784) array whose rows are AHDD's
flat column-major images (reshaping a row to (28, 28) gives the image transposed), one Python
iteration and one OpenCV call per image and operation. Only the training-split loops are copied
(the report's test loops did the same, with the test labels). Used by bench/preprocess.py as the
baseline and by tests/test_preprocess_named.py as the reference for the named pipelines.
"""

from __future__ import annotations

import cv2
import numpy as np

kernel = np.array([[0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0]], dtype=np.uint8)

closing_kernel = np.array(
    [
        [1, 1, 1, 1],
        [1, 1, 1, 1],
        [1, 1, 1, 1],
        [1, 1, 1, 1],
    ],
    dtype=np.uint8,
)


def report_normalize(images_train: np.ndarray) -> None:
    """1. Noramlization."""
    for item in range(images_train.shape[0]):
        images_train[item] = cv2.normalize(images_train[item], None, 0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F).reshape(
            (28 * 28,)
        )


def report_threshold(images_train: np.ndarray) -> None:
    """2. thresholding."""
    for item in range(images_train.shape[0]):
        images_train[item] = cv2.threshold(images_train[item], 0.2, 1.0, cv2.THRESH_BINARY)[1].reshape((28 * 28,))


def report_erosion(images_train: np.ndarray, label_train: np.ndarray) -> None:
    """The class-0 part of the report's final preprocessing alone (below): its "Erosion" variants."""
    for item in range(images_train.shape[0]):
        if label_train[item] == 0:
            images_train[item] = cv2.erode(images_train[item].reshape((28, 28)), kernel).reshape((784,))
            images_train[item] = cv2.erode(images_train[item].reshape((28, 28)), kernel).reshape((784,))


def report_erosion_dilation(images_train: np.ndarray, label_train: np.ndarray) -> None:
    """4. Erosion and Dilation: the 0s eroded twice with the 5x5 kernel, then every image
    dilated and eroded with 3x3 ones (the report's final preprocessing)."""
    # The report's loop did both per image; eroding the 0s first gives the same pixels (each image alone).
    report_erosion(images_train, label_train)
    for item in range(images_train.shape[0]):
        images_train[item] = cv2.dilate(images_train[item].reshape((28, 28)), np.ones((3, 3), np.uint8)).reshape((784,))
        images_train[item] = cv2.erode(images_train[item].reshape((28, 28)), np.ones((3, 3), np.uint8)).reshape((784,))


def report_closing(images_train: np.ndarray) -> None:
    """4. closing (the training loop; the report's test loop wrote to images_train by mistake)."""
    for item in range(images_train.shape[0]):
        images_train[item] = cv2.morphologyEx(
            images_train[item].reshape((28, 28)), cv2.MORPH_CLOSE, closing_kernel
        ).reshape((28 * 28,))


def report_loop(images_train: np.ndarray, label_train: np.ndarray) -> None:
    """The report's final preprocessing, as its notebook ran it: three passes over the dataset."""
    report_normalize(images_train)
    report_threshold(images_train)
    report_erosion_dilation(images_train, label_train)


#: Each named pipeline (core.preprocess.named) as the report's loops, in order.
REPORT_VARIANTS = {
    "raw": (),
    "erosion": ("erosion",),
    "erosion-closing": ("erosion", "closing"),
    "threshold-erosion-closing": ("threshold", "erosion", "closing"),
    "normal-threshold-erosion-closing": ("normalize", "threshold", "erosion", "closing"),
    "normal-threshold-dilate-erosion": ("normalize", "threshold", "erosion-dilation"),
}


def run_report_variant(name: str, images_train: np.ndarray, label_train: np.ndarray) -> None:
    """Run the report's loops of variant ``name`` in place on flat column-major float32 images."""
    for part in REPORT_VARIANTS[name]:
        if part == "normalize":
            report_normalize(images_train)
        elif part == "threshold":
            report_threshold(images_train)
        elif part == "erosion":
            report_erosion(images_train, label_train)
        elif part == "closing":
            report_closing(images_train)
        else:
            report_erosion_dilation(images_train, label_train)


def to_report_layout(x: np.ndarray) -> np.ndarray:
    """Upright (N, 28, 28) images as the report held them: float32 (N, 784), column-major rows."""
    return np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(len(x), 784).astype(np.float32)


def from_report_layout(flat: np.ndarray) -> np.ndarray:
    """The inverse of to_report_layout: upright (N, 28, 28) images."""
    return np.ascontiguousarray(flat.reshape(len(flat), 28, 28).transpose(0, 2, 1))
