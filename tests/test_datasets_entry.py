"""Entry points: format detection, uploads, confinement to the data folder, specs, sizes, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets_samples import (
    CSV_NAMES,
    assert_same_arrays,
    csv_files,
    idx_files,
    png_files,
    sample_arrays,
    write_files,
    zip_bytes,
)
from sqlalchemy import select

from core.datasets import Dataset, first_subset, load_files, load_from_data_dir, load_path, load_spec, save_upload
from core.datasets.npz import dataset_to_npz
from core.errors import DigitLabError
from core.store import database
from core.store.schema import uploads

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A fresh data folder and cache folder, wired into settings()."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(data))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(cache))
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))  # the store keeps the uploads' records
    return data, cache


def test_zip_of_csv_files_inside_a_top_folder(tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "ahdd.zip"
    path.write_bytes(
        zip_bytes(
            {f"AHDD/{name}": data for name, data in csv_files(arrays).items()}
            | {
                "__MACOSX/AHDD/._csvTrainImages 60k.csv": b"\0\5junk",
                "AHDD/.old/csvTrainImages 60k.csv": b"hidden copy, ignored",
            }
        )
    )
    ds = load_path(str(path))
    assert_same_arrays(ds, arrays)
    assert ds.name == "ahdd"


def test_list_of_four_files(tmp_path):
    arrays = sample_arrays()
    folder = write_files(tmp_path / "mnist", idx_files(arrays, gz=True))
    ds = load_path(sorted(folder.iterdir()))
    assert_same_arrays(ds, arrays)
    assert ds.name == "mnist"


def test_errors_in_a_zip_name_the_member(tmp_path):
    files = csv_files(sample_arrays())
    files[CSV_NAMES["test_labels"]] = b"1\n2\nx\n"
    path = tmp_path / "ahdd.zip"
    path.write_bytes(zip_bytes(files))
    with pytest.raises(DigitLabError) as info:
        load_path(path)
    assert str(info.value) == f"{path}/csvTestLabel 10k.csv: non-numeric value 'x' at line 3"


def test_unrecognised_inputs_name_the_path(tmp_path):
    single = write_files(tmp_path, {"only.csv": b"1,2\n"}) / "only.csv"
    with pytest.raises(DigitLabError, match=rf"^{single}: cannot tell the dataset format of a single file"):
        load_path(single)
    folder = write_files(tmp_path / "misc", {"notes.txt": b"hi", "img.jpg": b"\xff\xd8"})
    with pytest.raises(DigitLabError, match=rf"^{folder}: cannot tell the dataset format: expected"):
        load_path(folder)
    with pytest.raises(DigitLabError, match=rf"^{tmp_path / 'nope'}: no such file or folder$"):
        load_path(tmp_path / "nope")
    mixed = write_files(tmp_path / "mixed", csv_files(sample_arrays()) | idx_files(sample_arrays()))
    with pytest.raises(DigitLabError, match=r"holds files of several formats \(AHDD CSV files, MNIST IDX files\)"):
        load_path(mixed)


def test_uploads_one_zip_one_npz_or_loose_files():
    arrays = sample_arrays()
    assert_same_arrays(
        load_files({"pngs.zip": zip_bytes(png_files(sample_arrays(10, 10)))}, "pngs"), sample_arrays(10, 10)
    )
    ds = load_files({"d.npz": dataset_to_npz(Dataset("d", **arrays))}, "d.npz")
    assert_same_arrays(ds, arrays)
    assert_same_arrays(load_files(csv_files(arrays), "upload"), arrays)
    with pytest.raises(DigitLabError, match=r"^upload: missing 't10k-images-idx3-ubyte'"):
        load_files({k: v for k, v in idx_files(arrays).items() if not k.startswith("t10k-images")}, "upload")
    with pytest.raises(DigitLabError, match=r"^bad\.zip: not a zip file, or a corrupt one"):
        load_files({"bad.zip": b"PK\x03\x04 broken"}, "bad")


def test_data_dir_confinement(dirs, tmp_path):
    data, _ = dirs
    arrays = sample_arrays()
    write_files(data / "mnist", idx_files(arrays))
    (data / "set.npz").write_bytes(dataset_to_npz(Dataset("set", **arrays)))
    assert_same_arrays(load_from_data_dir("mnist"), arrays)
    assert_same_arrays(load_from_data_dir("set.npz"), arrays)
    outside = write_files(tmp_path / "secret", idx_files(arrays))
    for bad in ("../secret", "mnist/../../secret"):
        with pytest.raises(DigitLabError, match="refused: the path lies outside the data folder"):
            load_from_data_dir(bad)
    with pytest.raises(DigitLabError, match="give a path relative to the data folder"):
        load_from_data_dir(str(outside))
    (data / "linked").mkdir()
    for name in idx_files(arrays):
        (data / "linked" / name).symlink_to(outside / name)
    with pytest.raises(DigitLabError, match="refused: the file lies outside the data folder"):
        load_from_data_dir("linked")


def test_save_upload_and_load_spec_round_trip(dirs):
    _, cache = dirs
    arrays = sample_arrays()
    ds = Dataset("my upload", **arrays)
    spec = save_upload(ds)
    path = Path(spec.removeprefix("file:"))
    assert spec.startswith("file:") and path.parent == (cache / "uploads").resolve() and path.suffix == ".npz"
    assert save_upload(Dataset("my upload", **arrays)) == spec  # same content, same file
    # only the upload in its folder (no temporary file left behind); its record (file name, owners) apart
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".")] == [path.name]
    with database().read() as conn:
        assert conn.execute(select(uploads.c.hash)).scalars().all() == [path.stem]
    again = load_spec(spec)
    assert_same_arrays(again, arrays)
    assert again.name == "my upload"
    changed = dict(arrays, y_test=np.roll(arrays["y_test"], 1))
    assert save_upload(Dataset("my upload", **changed)) != spec


def test_load_spec_refuses_files_outside_cache_and_data(dirs, tmp_path):
    _, cache = dirs
    stray = tmp_path / "stray.npz"
    stray.write_bytes(dataset_to_npz(Dataset("x", **sample_arrays())))
    for spec in (f"file:{stray}", f"file:{cache}/../stray.npz", "file:/etc/passwd"):
        with pytest.raises(DigitLabError, match="refused: dataset files must lie in the cache or data folder"):
            load_spec(spec)
    with pytest.raises(DigitLabError, match="unknown dataset 'nope'"):
        load_spec("nope:small")
    with pytest.raises(DigitLabError, match="unknown size 'huge'"):
        load_spec("default:huge")


def test_first_subset_is_balanced_when_it_can_be():
    y = np.array([0] * 30 + list(range(10)) * 5)
    x = np.arange(len(y), dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    ds = Dataset("s", x, y, x[:20], y[:20])
    small = first_subset(ds, 20, 10)
    assert np.bincount(small.y_train).tolist() == [2] * 10  # not the first 20 (all zeros)
    assert small.x_train[:, 0, 0].tolist() == sorted(small.x_train[:, 0, 0].tolist())  # original order
    assert small.y_test.tolist() == [0] * 10  # too few of the other classes: the plain first 10
    assert first_subset(ds, 1000, 1000).y_train.tolist() == y.tolist()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "data", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_cli_summary_and_bad_file(tmp_path):
    arrays = sample_arrays(30, 20)
    good = write_files(tmp_path / "good", csv_files(arrays))
    result = _cli("--path", str(good), "--summary")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "Size of data loaded for train images is: (30, 784)",
        "Size of data loaded for train labels is: (30,)",
        "Size of data loaded for test images is: (20, 784)",
        "Size of data loaded for test labels is: (20,)",
    ]
    assert lines[6].split() == ["0", "\u200e٠", "(0)", "3", "2"]  # label 0: 3 train, 2 test

    files = csv_files(arrays)
    files[CSV_NAMES["train_images"]] = files[CSV_NAMES["train_images"]].replace(b"\n", b",7\n", 1)
    bad = write_files(tmp_path / "bad", files)
    result = _cli("--path", str(bad), "--summary")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {bad}/csvTrainImages 60k.csv: line 1 has 785 values, expected 784\n"


def test_dataset_specs_parse_once_and_never_display_a_server_path(dirs):
    from core.datasets import DatasetSpec, display_spec

    ready = DatasetSpec.parse("default:tiny")
    assert (ready.name, ready.size, ready.is_file, ready.is_ready) == ("default", "tiny", False, True)
    assert str(ready) == ready.display == "default:tiny" and DatasetSpec.parse(ready) is ready
    assert str(DatasetSpec.parse("default")) == "default:full"
    assert not DatasetSpec.parse("nope:tiny").is_ready and not DatasetSpec.parse("default:huge").is_ready
    assert DatasetSpec.from_cli("default", "small") == DatasetSpec("default", "small")
    assert DatasetSpec.from_cli("default:tiny", "small") == ready  # a whole spec wins over --size
    upload = DatasetSpec.parse(save_upload(load_spec("default:tiny")))
    assert upload.is_file and not upload.is_ready and str(upload.path) not in upload.display
    assert upload.display.startswith("upload ") and len(upload.display) == len("upload ") + 8
    assert display_spec("file:/srv/data/set.npz") == "set.npz"
    assert_same_arrays(
        upload.load(), {k: getattr(load_spec("default:tiny"), k) for k in ("x_train", "y_train", "x_test", "y_test")}
    )
    with pytest.raises(DigitLabError, match="a dataset spec names a ready dataset"):
        DatasetSpec.parse(":tiny")
