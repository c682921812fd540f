"""The synthetic default dataset: determinism, layout, ink statistics, the on-disk cache."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.datasets import synthetic
from core.datasets.glyphs import GLYPHS
from core.datasets.synthetic import SIZES, cache_path, default_dataset, generate
from core.errors import DigitLabError


@pytest.fixture(scope="module")
def sample():
    """2,000 train images (20 writers, 200 per digit) and one test writer."""
    return generate(2000, 100, seed=0)


def ink_by_class(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.array([(x[y == c] > 0).mean() for c in range(10)])


def centre_of_mass(x: np.ndarray) -> np.ndarray:
    """Mean (row, column) centre of mass, 0-based."""
    ink = (x > 0).astype(np.float64)
    idx = np.arange(28.0)
    mass = ink.sum(axis=(1, 2))
    return np.array([((ink.sum(axis=2) @ idx) / mass).mean(), ((ink.sum(axis=1) @ idx) / mass).mean()])


def box_sides(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height and width of each image's ink bounding box."""
    rows, cols = (x > 0).any(axis=2), (x > 0).any(axis=1)

    def extent(mask: np.ndarray) -> np.ndarray:
        return 28 - mask.argmax(axis=1) - mask[:, ::-1].argmax(axis=1)

    return extent(rows), extent(cols)


def test_glyph_curves_follow_their_control_points():
    for glyph in (g for variants in GLYPHS for g in variants):
        # moving every control point moves the curve by the same amount (weights sum to 1)
        assert np.allclose(glyph.basis.sum(axis=1), 1.0)
        curve = glyph.curve(glyph.controls)
        assert np.allclose(curve[0], glyph.controls[0]) or glyph.closed
    # ٧'s sharp variant is two straight pieces meeting at the bottom tip
    v = GLYPHS[7][0]
    curve = v.curve(v.controls)
    tip = curve[:, 1].argmax()
    assert np.allclose(curve[tip], (0.5, 1.0))
    d, chord = curve[: tip + 1] - curve[0], curve[tip] - curve[0]
    assert np.allclose(d[:, 0] * chord[1] - d[:, 1] * chord[0], 0.0)  # collinear with the chord


def test_same_seed_gives_the_same_arrays_and_another_seed_differs():
    a, b, c = generate(300, 100, seed=7), generate(300, 100, seed=7), generate(300, 100, seed=8)
    for split in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, split), getattr(b, split))
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_test, c.x_test)


def test_smaller_size_is_a_prefix_of_a_larger_one():
    small, large = generate(250, 30, seed=2), generate(600, 100, seed=2)
    assert np.array_equal(small.x_train, large.x_train[:250])
    assert np.array_equal(small.x_test, large.x_test[:30])


def test_layout_matches_ahdd(sample):
    assert sample.x_train.shape == (2000, 28, 28) and sample.x_test.shape == (100, 28, 28)
    assert sample.x_train.dtype == np.uint8 and sample.y_train.dtype == np.int64
    assert set(np.unique(sample.x_train)) == {0, 255}
    # writer by writer, labels cycling 0..9 like AHDD's ids
    assert np.array_equal(sample.y_train[:20], np.tile(np.arange(10), 2))
    assert np.bincount(sample.y_train).tolist() == [200] * 10
    assert "synthetic" in sample.name


def test_test_writers_are_not_train_writers(sample):
    # the first test writer draws differently from the first train writer: no image is shared
    train, test = sample.x_train[:100].reshape(100, -1), sample.x_test.reshape(100, -1)
    assert not (train[:, None, :] == test[None, :, :]).all(axis=2).any()


def test_ink_coverage_per_class_is_in_ahdd_bands(sample):
    ink = ink_by_class(sample.x_train, sample.y_train)
    assert ink[0] > ink[1:].max()  # the dot becomes a blob
    assert ink[1] < ink[[0, 2, 3, 4, 6, 7, 8, 9]].min()  # the thin stroke
    assert 0.20 < ink[0] < 0.32 and 0.05 < ink[1] < 0.10
    assert ((ink[2:] > 0.10) & (ink[2:] < 0.28)).all()


def test_digits_fill_a_20px_box_centred_by_mass(sample):
    h, w = box_sides(sample.x_train)
    assert np.maximum(h, w).min() >= 18 and np.maximum(h, w).max() <= 20
    assert np.abs(centre_of_mass(sample.x_train) - 13.1).max() < 0.3


def holes(img: np.ndarray) -> int:
    """Background regions enclosed by ink (4-connected background, as ink is 8-connected)."""
    regions = cv2.connectedComponents((img == 0).astype(np.uint8), connectivity=4)[0] - 1
    return regions - 1


def test_some_strokes_are_hollow(sample):
    # a hollow stroke encloses background along its length: several holes, where a solid ٥ or ٩
    # has one
    share = np.mean([holes(img) >= 2 for img in sample.x_train])
    assert 0.02 < share < 0.30


def test_default_dataset_is_cached_and_reused(tmp_path, monkeypatch):
    first = default_dataset("tiny", cache_dir=tmp_path)
    path = cache_path("tiny", tmp_path)
    assert path.is_file() and path.parent == tmp_path / "synthetic"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert (len(first.x_train), len(first.x_test)) == SIZES["tiny"]

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached copy should have been loaded")

    monkeypatch.setattr(synthetic, "generate", no_generation)
    again = default_dataset("tiny", cache_dir=tmp_path)
    assert np.array_equal(first.x_train, again.x_train) and np.array_equal(first.y_test, again.y_test)


def test_cache_key_holds_the_generator_version(tmp_path, monkeypatch):
    old = cache_path("tiny", tmp_path)
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    assert cache_path("tiny", tmp_path) != old


def test_default_dataset_uses_the_settings_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path))
    default_dataset("tiny")
    assert cache_path("tiny", tmp_path).is_file()


def test_damaged_cache_file_is_drawn_again(tmp_path):
    path = cache_path("tiny", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    ds = default_dataset("tiny", cache_dir=tmp_path)
    assert len(ds.x_train) == SIZES["tiny"][0]
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(npz["x_train"], ds.x_train)


def test_cached_file_with_other_counts_is_drawn_again(tmp_path):
    path = cache_path("tiny", tmp_path)
    path.parent.mkdir(parents=True)
    small = generate(20, 10)
    np.savez(path, x_train=small.x_train, y_train=small.y_train, x_test=small.x_test, y_test=small.y_test)
    ds = default_dataset("tiny", cache_dir=tmp_path)
    assert (len(ds.x_train), len(ds.x_test)) == SIZES["tiny"]


def test_unwritable_cache_only_warns(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not cache"):
        ds = default_dataset("tiny", cache_dir=blocker)
    assert len(ds.x_train) == SIZES["tiny"][0]


def test_unknown_size_is_a_digitlab_error(tmp_path):
    with pytest.raises(DigitLabError, match="unknown size 'huge'.*full, small, tiny"):
        default_dataset("huge", cache_dir=tmp_path)


@pytest.mark.parametrize("args", [(0, 10), (10, -1), (2.5, 10)])
def test_bad_counts_are_digitlab_errors(args):
    with pytest.raises(DigitLabError, match="must be a positive whole number"):
        generate(*args)


def test_negative_seed_is_a_digitlab_error():
    with pytest.raises(DigitLabError, match="seed"):
        generate(10, 10, seed=-1)


def load_real_sample(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    with zipfile.ZipFile(shared / "data" / "ahdd-real-sample.zip") as zf:
        for name in zf.namelist():
            match = re.search(r"label_(\d)\.png$", name)
            if match:
                raw = np.frombuffer(zf.read(name), np.uint8)
                images.append(cv2.imdecode(raw, cv2.IMREAD_GRAYSCALE))
                labels.append(int(match.group(1)))
    return np.stack(images), np.array(labels)


def test_statistics_resemble_the_real_sample(shared_dir, sample):
    real_x, real_y = load_real_sample(shared_dir)
    assert len(real_x) == 2000
    ink_real = ink_by_class(real_x, real_y)
    ink_synth = ink_by_class(sample.x_train, sample.y_train)
    assert np.abs(ink_synth - ink_real).max() < 0.04, (ink_synth.round(3), ink_real.round(3))
    assert np.abs(centre_of_mass(sample.x_train) - centre_of_mass(real_x)).max() < 0.4
    for synth_side, real_side in zip(box_sides(sample.x_train), box_sides(real_x)):
        assert abs(synth_side.mean() - real_side.mean()) < 1.5
    longer_synth = np.maximum(*box_sides(sample.x_train)).mean()
    longer_real = np.maximum(*box_sides(real_x)).mean()
    assert abs(longer_synth - longer_real) < 0.3
