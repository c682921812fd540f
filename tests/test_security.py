"""A hosted instance takes files from strangers: uploads are data only, archives and images are
bounded before anything is inflated, server paths stay inside their folders, sessions are private.

Bombs are real archives (built in tests/hostile_files.py); memory is what ``tracemalloc`` saw
allocated while the loader refused them (NumPy's buffers included).
"""

from __future__ import annotations

import ast
import io
import os
import struct
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from datasets_samples import CSV_NAMES, IDX_NAMES, csv_files, idx_files, png_files, sample_arrays, zip_bytes

from core.datasets import load_files, load_from_data_dir, load_spec, save_upload
from core.datasets.archive import MAX_MEMBERS, MAX_TOTAL_BYTES
from core.datasets.sources import MAX_GUNZIP_BYTES
from core.errors import DigitLabError
from core.runs.store import PREDICTIONS_NAME, RUNNING, RunStore, validate_run_id
from core.training.config import RunConfig
from tests.hostile_files import (
    MIB,
    RawMember,
    central_directory_bomb,
    deflated_zeros,
    good_arrays,
    npy_header,
    npz_bytes,
    pickle_tripwire,
    png_claiming,
    raw_zip,
    stored_member,
    zeros_member,
)
from tests.pages_support import ROOT, isolate_env, no_exceptions, open_page

#: What refusing a hostile file may allocate, whatever it claims to hold.
SMALL = 16 * MIB


@contextmanager
def allocations() -> Iterator[dict[str, int]]:
    """Peak bytes allocated inside the block (``result["peak"]`` once it exits)."""
    result = {"peak": 0}
    tracemalloc.start()
    try:
        yield result
    finally:
        result["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def refused(files: dict[str, bytes], name: str = "upload") -> DigitLabError:
    with pytest.raises(DigitLabError) as info:
        load_files(files, name)
    return info.value


# ---- uploads are data, never code ------------------------------------------------------------------


def test_an_npz_holding_an_object_array_is_refused_and_never_unpickled(tmp_path):
    tripwire = tmp_path / "unpickled"
    arrays = good_arrays()
    arrays["y_train"] = np.array([pickle_tripwire(str(tripwire))] * 20, dtype=object)
    err = refused({"evil.npz": npz_bytes(**arrays)})
    assert err.file == "evil.npz"
    assert "y_train holds Python objects (pickles), which are refused" in err.problem
    assert not tripwire.exists()


def test_an_npz_member_that_is_a_bare_pickle_is_refused(tmp_path):
    tripwire = tmp_path / "unpickled"
    buffer = io.BytesIO(npz_bytes(**good_arrays()))
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.writestr("extra.npy", pickle_tripwire(str(tripwire)))
    err = refused({"evil.npz": buffer.getvalue()})
    assert err.file == "evil.npz" and "'extra.npy' is not a .npy array" in err.problem
    assert not tripwire.exists()


def test_a_keras_model_upload_is_not_a_dataset():
    """A .keras file is a zip of config.json and weights: the loaders see an unknown format."""
    model = zip_bytes(
        {
            "metadata.json": b'{"keras_version": "3.15.1"}',
            "config.json": b'{"class_name": "Sequential", "config": {"layers": []}}',
            "model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(64),
        }
    )
    err = refused({"model.keras": model})
    assert err.file == "model.keras" and "cannot tell the dataset format" in err.problem


def _project_sources() -> list[Path]:
    return [
        ROOT / "app.py",
        *sorted((ROOT / "pages").glob("*.py")),
        *sorted((ROOT / "ui").glob("*.py")),
        *sorted((ROOT / "core").rglob("*.py")),
    ]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def test_no_code_path_unpickles_or_loads_a_model_unsafely():
    """Read every module the app runs: NumPy loads refuse pickles, nothing imports a pickle
    library, Keras models load only in core.training.fit.load_model (safe mode, never switched off),
    and every other caller hands it a run's own model path."""
    problems = []
    for path in _project_sources():
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(
                    m.split(".")[0] in ("pickle", "dill", "joblib", "marshal", "shelve", "cloudpickle") for m in modules
                ):
                    problems.append(f"{where}:{node.lineno} imports {modules}")
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in ("np.load", "numpy.load"):
                flag = keywords.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{where}:{node.lineno} np.load without allow_pickle=False")
            if name in (
                "eval",
                "exec",
                "pd.read_pickle",
                "pickle.loads",
                "enable_unsafe_deserialization",
            ) or name.endswith(".enable_unsafe_deserialization"):
                problems.append(f"{where}:{node.lineno} calls {name}")
            if "safe_mode" in keywords:
                problems.append(f"{where}:{node.lineno} passes safe_mode")
            if name.endswith("load_model"):
                if name.startswith(("keras.", "tf.keras.")):
                    if where != "core/training/fit.py":
                        problems.append(f"{where}:{node.lineno} loads a Keras model directly")
                elif where != "core/training/fit.py":
                    arg = node.args[0] if node.args else None
                    # The worker's copy of a run's model file, shipped as bytes (core.execution.shipping).
                    shipped = where == "core/execution/shipping.py" and isinstance(arg, ast.Name) and arg.id == "path"
                    if not shipped and not (isinstance(arg, ast.Call) and _dotted(arg.func).endswith("model_path")):
                        problems.append(f"{where}:{node.lineno} load_model of something not a run's model_path")
    assert not problems, problems


@pytest.mark.parametrize("name", ["model.keras", "weights.h5", "data.pkl", "arrays.npy"])
def test_a_model_or_pickle_uploaded_on_the_data_page_is_refused_as_data(monkeypatch, tmp_path, name):
    """Whatever types the uploader lets through, a model or a pickle is only ever parsed as data."""
    isolate_env(monkeypatch, tmp_path)
    tripwire = tmp_path / "unpickled"
    content = {
        "model.keras": zip_bytes({"config.json": b"{}", "model.weights.h5": b"\x89HDF\r\n\x1a\n"}),
        "weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(64),
        "data.pkl": pickle_tripwire(str(tripwire)),
        "arrays.npy": npz_bytes(y=np.array([pickle_tripwire(str(tripwire))], dtype=object)),
    }[name]
    at = open_page("data")
    at.radio[0].set_value("Upload files").run()
    types = {t.lower().lstrip(".") for t in at.get("file_uploader")[0].proto.type}
    assert not types & {"keras", "h5", "hdf5", "pkl", "pickle", "joblib", "pt", "tflite"}
    at.get("file_uploader")[0].set_value((name, content, "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Load upload").click().run()
    no_exceptions(at)
    assert len(at.error) == 1 and f"{name}: " in at.error[0].value
    assert [m.value for m in at.metric][:2] == ["600", "100"]
    assert not tripwire.exists()


def test_run_models_load_in_keras_safe_mode(tmp_path):
    """A model whose file carries Python code (a Lambda layer) is refused, not executed."""
    import keras

    from core.training.fit import load_model

    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig.build("default:tiny", "raw", "H"), status=RUNNING)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(lambda x: x * 2)])
    store.save_model(run.id, model)
    with pytest.raises(DigitLabError, match="Lambda") as info:
        load_model(store.model_path(run.id))
    assert info.value.file == str(store.model_path(run.id))
    store.fail(run.id, "test over")


# ---- archives and images: bounded before inflating ---------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        "../csvTrainImages 60k.csv",
        "top/../../csvTrainImages 60k.csv",
        "/etc/csvTrainImages 60k.csv",
        "C:/csvTrainImages 60k.csv",
        "..\\csvTrainImages 60k.csv",
    ],
)
def test_zip_members_that_climb_out_are_refused(member):
    files = {name: data for name, data in csv_files(sample_arrays()).items()}
    files[member] = files.pop(CSV_NAMES["train_images"])
    err = refused({"up.zip": zip_bytes(files)})
    assert err.file == "up.zip" and "unsafe member name" in err.problem


def test_a_zip_listing_millions_of_members_is_refused_before_parsing():
    bomb = central_directory_bomb(1_000_000)  # 47 MB that zipfile would turn into a million objects
    with allocations() as used:
        err = refused({"many.zip": bomb})
    assert err.file == "many.zip"
    assert err.problem == f"archive has 1,000,000 members, more than the limit of {MAX_MEMBERS:,}"
    assert used["peak"] < SMALL


def test_a_zip_bomb_is_refused_before_inflating():
    """Four honest members of 300 MiB of zeros each: 1.2 MB that would inflate to 1.2 GiB."""
    bomb = raw_zip([zeros_member(name, 300) for name in CSV_NAMES.values()])
    assert len(bomb) < 2 * MIB
    with allocations() as used:
        err = refused({"bomb.zip": bomb})
    assert err.file == "bomb.zip"
    assert err.problem == (
        f"archive would inflate to {4 * 300 * MIB:,} bytes, more than the limit of "
        f"{MAX_TOTAL_BYTES:,} (DIGITLAB_MAX_DATASET_MB)"
    )
    assert used["peak"] < SMALL


def test_a_zip_bomb_that_lies_about_its_sizes_inflates_no_further_than_declared():
    bomb = raw_zip([zeros_member(name, 300, declared_mib=1) for name in CSV_NAMES.values()])
    with allocations() as used:
        err = refused({"liar.zip": bomb})
    assert err.file.startswith("liar.zip/") and "corrupt member" in err.problem and "CRC" in err.problem
    assert used["peak"] < SMALL


def test_a_zip_inside_a_zip_is_not_unpacked():
    inner = raw_zip([zeros_member(name, 300) for name in CSV_NAMES.values()])
    with allocations() as used:
        err = refused({"outer.zip": raw_zip([stored_member("inner.zip", inner)])})
    assert err.file == "outer.zip" and "cannot tell the dataset format" in err.problem
    assert used["peak"] < SMALL + len(inner)


def test_an_npz_declaring_a_giant_array_is_refused_before_allocating():
    n = 1_500_000  # 1.1 GiB of images, deflated to 1 MB
    stream, crc, size = deflated_zeros(n * 784 // MIB + 1, npy_header((n, 28, 28)))
    members = [RawMember("x_train.npy", stream, crc, size)]
    small = npz_bytes(**good_arrays())
    with zipfile.ZipFile(io.BytesIO(small)) as zf:
        members += [stored_member(name, zf.read(name)) for name in zf.namelist() if name != "x_train.npy"]
    with allocations() as used:
        err = refused({"big.npz": raw_zip(members)})
    assert err.file == "big.npz" and "more than this instance's limit of 268,435,456" in err.problem
    assert used["peak"] < SMALL


def _gzip_idx_bomb(images: int, zeros_mib: int) -> bytes:
    """A gzipped IDX image file whose header announces ``images`` images, followed by ``zeros_mib``
    MiB of zeros (whatever the header says)."""
    header = struct.pack(">IIII", 0x0803, images, 28, 28)
    stream, crc, size = deflated_zeros(zeros_mib, header)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + stream + struct.pack("<II", crc, size & 0xFFFFFFFF)


@pytest.mark.parametrize(
    "images, problem",
    [
        (
            2_000_000,
            f"the header announces 2,000,000 x 28 x 28 bytes of data, more than this instance's limit "
            f"of {MAX_GUNZIP_BYTES:,} (DIGITLAB_MAX_DATASET_MB)",
        ),
        (20, f"{MIB:,} bytes more than the header announces"),  # a modest header, 400 MiB behind it
    ],
)
def test_a_gzip_bomb_inflates_no_further_than_its_header_announces(images, problem):
    files = idx_files(sample_arrays())
    bomb = _gzip_idx_bomb(images, 400)
    assert len(bomb) < MIB
    files[IDX_NAMES["train_images"] + ".gz"] = bomb
    del files[IDX_NAMES["train_images"]]
    with allocations() as used:
        err = refused(files)
    assert (err.file, err.problem) == (IDX_NAMES["train_images"] + ".gz", problem)
    assert used["peak"] < SMALL


def test_a_png_claiming_100000_by_100000_pixels_is_refused_before_decoding(monkeypatch):
    from core.datasets import png_folder

    decoded, decode = [], png_folder._quiet_imdecode
    files = png_files(sample_arrays(10, 10), top="digits")
    files["digits/train/3/huge.png"] = png_claiming(100_000, 100_000)
    monkeypatch.setattr(png_folder, "_quiet_imdecode", lambda data, file: decoded.append(file) or decode(data, file))
    with allocations() as used:
        err = refused({"pngs.zip": zip_bytes(files)})
    assert err.file == "pngs.zip/digits/train/3/huge.png"
    assert err.problem == "image is 100000x100000 pixels, expected 28x28"
    assert err.file not in decoded and len(decoded) > 0
    assert used["peak"] < SMALL


# ---- server paths ------------------------------------------------------------------------------------


@pytest.fixture
def folders(monkeypatch, tmp_path) -> dict[str, Path]:
    """A data folder with one good dataset, a cache folder, and a dataset outside both."""
    data, cache, outside = tmp_path / "data", tmp_path / "cache", tmp_path / "outside"
    for folder in (data, cache, outside):
        folder.mkdir()
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(data))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(cache))
    good = npz_bytes(**good_arrays())
    (data / "good.npz").write_bytes(good)
    (outside / "secret.npz").write_bytes(good)
    secret_csv = outside / "csv"
    secret_csv.mkdir()
    for name, content in csv_files(sample_arrays()).items():
        (secret_csv / name).write_bytes(content)
    return {"data": data, "cache": cache, "outside": outside}


def test_a_dataset_in_the_data_folder_loads(folders):
    assert len(load_from_data_dir("good.npz").x_train) == 20


@pytest.mark.parametrize(
    "relative",
    [
        "../outside/secret.npz",
        "sub/../../outside/secret.npz",
        "link.npz",
        "linked-folder",
        "mixed",
        "mixed/csvTrainImages 60k.csv",
    ],
)
def test_reading_the_server_disk_stays_inside_the_data_folder(folders, relative):
    data, outside = folders["data"], folders["outside"]
    (data / "sub").mkdir()
    (data / "link.npz").symlink_to(outside / "secret.npz")
    (data / "linked-folder").symlink_to(outside / "csv", target_is_directory=True)
    # A real folder whose one file is a symlink out: the folder passes, the file must not.
    (data / "mixed").mkdir()
    for name in CSV_NAMES.values():
        target = data / "mixed" / name
        if name == CSV_NAMES["train_images"]:
            target.symlink_to(outside / "csv" / name)
        else:
            target.write_bytes((outside / "csv" / name).read_bytes())
    with pytest.raises(DigitLabError, match="outside the data folder"):
        load_from_data_dir(relative)


@pytest.mark.parametrize("relative", ["/etc/passwd", "", "//etc/passwd"])
def test_absolute_or_empty_data_paths_are_refused(folders, relative):
    with pytest.raises(DigitLabError, match="relative to the data folder"):
        load_from_data_dir(relative)


def test_dataset_specs_follow_files_only_into_the_cache_and_data_folders(folders):
    cache, outside = folders["cache"], folders["outside"]
    (cache / "uploads").mkdir()
    (cache / "uploads" / "planted.npz").symlink_to(outside / "secret.npz")
    for spec in (
        f"file:{outside / 'secret.npz'}",
        f"file:{cache}/../outside/secret.npz",
        f"file:{cache / 'uploads' / 'planted.npz'}",
        "file:/etc/passwd",
    ):
        with pytest.raises(DigitLabError, match="refused"):
            load_spec(spec)
    spec = save_upload(load_files({"mine.npz": npz_bytes(**good_arrays())}, "mine.npz"))
    assert Path(spec.removeprefix("file:")).parent == (cache / "uploads").resolve()
    assert load_spec(spec).name == "mine.npz"


EVIL_IDS = [
    "../x",
    "..",
    "/etc",
    "0a1b2c3d/../../x",
    "0a1b2c3d/..",
    "",
    None,
    12345678,
    "0a1b2c3d\n",
    "0A1B2C3D",
    "0a1b2c3",
    "0a1b2c3d0",
    " 0a1b2c3d",
    "0a1b2c3\u0000",
]


@pytest.mark.parametrize("run_id", EVIL_IDS)
def test_a_run_id_from_a_request_never_reaches_outside_the_run_root(tmp_path, run_id):
    root = tmp_path / "runs"
    store = RunStore(root)
    sentinel = tmp_path / "x"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("keep")
    with pytest.raises(DigitLabError, match="not a run id"):
        validate_run_id(run_id)
    for call in (
        store.get,
        store.folder,
        store.history,
        store.delete,
        store.request_stop,
        store.predictions,
        store.epoch_predictions,
        store.model_path,
        lambda r: store.set_pid(r, os.getpid()),
    ):
        with pytest.raises(DigitLabError, match="not a run id"):
            call(run_id)
    assert (sentinel / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in root.iterdir()) == ["index.sqlite3"]


def test_run_arrays_are_written_only_under_their_fixed_names(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig.build("default:tiny", "raw", "H"), status=RUNNING)
    for name in ("../../evil.npy", "/tmp/evil.npy", "model.keras"):
        with pytest.raises(DigitLabError, match="unknown run array"):
            store.save_array(run.id, name, np.zeros(3))
    store.save_array(run.id, PREDICTIONS_NAME, np.zeros((2, 10), np.float32))
    assert sorted(p.name for p in run.folder.iterdir()) == ["config.json", PREDICTIONS_NAME]
    store.fail(run.id, "test over")


# ---- sessions ----------------------------------------------------------------------------------------


def test_each_session_sees_its_own_upload_while_runs_are_shared(monkeypatch, tmp_path):
    """Two browser sessions: one uploads, the other keeps the default dataset; both list the same runs.

    Single-page AppTests: through app.py, ``ui.state._leave_legacy_page_mode`` reruns every
    AppTest run (AppTest resets Streamlit's pages-folder flag each time) and the rerun drops clicks.
    """
    isolate_env(monkeypatch, tmp_path)
    alice, bob = open_page("data"), open_page("data")
    alice.radio[0].set_value("Upload files").run()
    alice.get("file_uploader")[0].set_value(
        ("alice.npz", npz_bytes(**good_arrays(40, 20)), "application/octet-stream")
    ).run()
    next(b for b in alice.button if b.label == "Load upload").click().run()
    no_exceptions(alice)
    assert [m.value for m in alice.metric][:2] == ["40", "20"]
    assert alice.session_state["dataset_spec"].startswith("file:")

    bob.run()
    no_exceptions(bob)
    assert [m.value for m in bob.metric][:2] == ["600", "100"]
    assert bob.session_state["dataset_spec"] == "default:tiny"
    alice.run()
    assert [m.value for m in alice.metric][:2] == ["40", "20"]

    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig.build("default:tiny", "raw", "H"), status=RUNNING)  # ours: never dispatched
    try:
        for _ in ("alice", "bob"):
            runs_page = open_page("runs")
            no_exceptions(runs_page)
            assert list(runs_page.dataframe[0].value["id"]) == [run.id]
    finally:
        store.fail(run.id, "test over")
