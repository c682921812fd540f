"""Benchmark: the report's per-image preprocessing loop against the project's pipeline, same data.

Runs the report's final preprocessing (normalise, threshold 0.2, erode the 0s twice with its 5x5
kernel, dilate 3x3, erode 3x3) as the report did (bench/report_loop.py, flat column-major float32
rows) and the project pipeline "normal-threshold-dilate-erosion" on the same images held upright,
best of --repeat runs each. The last line printed is (its wording fixed by issue 4: "seed-loop" is the report's loop)

    seed-loop <s> s, project <s> s, speedup <x>x, identical: yes|no

where identical means the report's output, transposed back upright, equals the project's exactly.

    .venv/bin/python bench/preprocess.py [--n 70000] [--repeat 3] [--per-step]

--per-step first prints, for every step type alone with its defaults, the project's time per
image on the whole data against a per-image loop of the plain OpenCV call (on --loop-n images).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from bench.report_loop import from_report_layout, report_loop, to_report_layout
from core.preprocess import STEP_TYPES, Pipeline, get_pipeline, preview


def plain_call(step):
    """The per-image OpenCV call a step stands for (its reference in tests), or None."""
    kind = step.KIND
    if kind == "normalize":
        return lambda img, label: cv2.normalize(img, None, 0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)
    if kind == "scale":
        return lambda img, label: img / np.float32(255)
    if kind == "threshold":
        return lambda img, label: cv2.threshold(img, step.thresh, step.maxval, cv2.THRESH_BINARY)[1]
    if kind == "gaussian-blur":
        return lambda img, label: cv2.GaussianBlur(img, (step.ksize, step.ksize), step.sigma)
    if kind == "class-erosion":
        kernel = step.kernel_array()
        return lambda img, label: cv2.erode(img, kernel, iterations=step.iterations) if label == step.digit else img
    ops = {
        "erosion": cv2.MORPH_ERODE,
        "dilation": cv2.MORPH_DILATE,
        "opening": cv2.MORPH_OPEN,
        "closing": cv2.MORPH_CLOSE,
    }
    if kind in ops:
        kernel = step.kernel_array()
        return lambda img, label: cv2.morphologyEx(img, ops[kind], kernel, iterations=step.iterations)
    return None  # no single plain call (centre, deskew, ...): project time only


def per_step_table(x: np.ndarray, y: np.ndarray, loop_n: int, repeat: int) -> None:
    """Microseconds per image: each step alone, project engine vs a per-image loop."""
    xf = x[:loop_n].astype(np.float32)
    print(f"{'step':<16}{'project us/img':>16}{'loop us/img':>13}{'speedup':>9}")
    for kind, cls in STEP_TYPES.items():
        step = cls()
        pipeline = Pipeline((step,))
        project_s, _ = best_time(lambda: pipeline.transform_train(x, y), repeat)  # noqa: B023 - called at once
        call = plain_call(step)
        loop = "-"
        ratio = ""
        if call is not None:
            loop_s, _ = best_time(lambda: [call(img, label) for img, label in zip(xf, y)], repeat)  # noqa: B023 - called at once
            loop_us = loop_s / len(xf) * 1e6
            loop = f"{loop_us:.2f}"
            ratio = f"{loop_us / (project_s / len(x) * 1e6):.1f}x"
        print(f"{kind:<16}{project_s / len(x) * 1e6:>16.3f}{loop:>13}{ratio:>9}")


def random_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fallback data: binary (0/255) images of a few random thick strokes, random labels."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for img in x:
        for _ in range(int(rng.integers(1, 4))):
            p, q = rng.integers(4, 24, 2), rng.integers(4, 24, 2)
            cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 255, int(rng.integers(1, 4)))
    return x, rng.integers(0, 10, n)


def load_data(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """n images and labels: the synthetic AHDD (train then test) if available, else random strokes."""
    try:
        from core.datasets.synthetic import default_dataset, generate
    except ImportError:
        x, y = random_digits(n)
        return x, y, "random strokes"
    ds = default_dataset("full") if n <= 70000 else generate(n, 1)
    x = np.concatenate([ds.x_train, ds.x_test])[:n]
    y = np.concatenate([ds.y_train, ds.y_test])[:n]
    return x, y, ds.name


def best_time(func, repeat: int) -> tuple[float, object]:
    """Smallest wall time of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70000, help="number of images (default 70000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept (default 3)")
    parser.add_argument("--per-step", action="store_true", help="also time every step type alone")
    parser.add_argument("--loop-n", type=int, default=10000, help="images for per-step loops (default 10000)")
    args = parser.parse_args(argv)

    x, y, source = load_data(args.n)
    flat = to_report_layout(x)
    pipeline = get_pipeline("normal-threshold-dilate-erosion")
    print(f"{len(x)} images from {source}; pipeline: {pipeline.label}")
    if args.per_step:
        per_step_table(x, y, args.loop_n, args.repeat)
    preview_s, _ = best_time(lambda: preview(pipeline, x[:32], y[:32]), 20)
    print(f"preview of 32 images: {preview_s * 1000:.2f} ms")

    def run_report() -> np.ndarray:
        images = flat.copy()
        report_loop(images, y)
        return images

    report_s, report_out = best_time(run_report, args.repeat)
    project_s, project_out = best_time(lambda: pipeline.transform_train(x, y), args.repeat)
    identical = np.array_equal(from_report_layout(report_out), project_out)
    print(
        f"seed-loop {report_s:.3f} s, project {project_s:.3f} s, speedup {report_s / project_s:.1f}x, "
        f"identical: {'yes' if identical else 'no'}"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
