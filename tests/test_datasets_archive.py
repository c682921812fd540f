"""Safe in-memory zip reading: limits, unsafe names, corrupt and empty archives."""

from __future__ import annotations

import io
import zipfile

import pytest
from datasets_samples import zip_bytes

from core.datasets.archive import read_zip, safe_member_name
from core.errors import DigitLabError


def _zip_with(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            zf.writestr(zipfile.ZipInfo(name), b"x")
    return buffer.getvalue()


def test_reads_every_file_member_into_memory_and_skips_folders(tmp_path):
    data = zip_bytes({"top/a.csv": b"1,2\n", "top/sub/b.bin": bytes(range(256))})
    assert read_zip(data, "up.zip") == {"top/a.csv": b"1,2\n", "top/sub/b.bin": bytes(range(256))}
    path = tmp_path / "up.zip"
    path.write_bytes(_zip_with("dir/", "dir/f.txt"))
    assert read_zip(path, str(path)) == {"dir/f.txt": b"x"}
    assert not (tmp_path / "dir").exists()  # nothing extracted


@pytest.mark.parametrize("name", ["../evil.csv", "a/../../evil.csv", "/etc/passwd", "C:/x.csv", "..\\evil.csv"])
def test_refuses_members_that_escape(name):
    assert safe_member_name(name) is None
    with pytest.raises(DigitLabError, match=r"^up\.zip: unsafe member name"):
        read_zip(_zip_with("ok.csv", name), "up.zip")


def test_backslash_names_become_posix_paths():
    assert safe_member_name("train\\3\\a.png") == "train/3/a.png"


def test_member_count_limit():
    with pytest.raises(DigitLabError, match=r"^up\.zip: archive has 4 members, more than the limit of 3"):
        read_zip(_zip_with("a", "b", "c", "d"), "up.zip", max_members=3)
    assert len(read_zip(_zip_with("a", "b", "c"), "up.zip", max_members=3)) == 3


def test_declared_size_limit_refuses_a_zip_bomb_before_inflating():
    bomb = zip_bytes({"zeros.csv": bytes(5_000_000)})
    assert len(bomb) < 10_000
    with pytest.raises(DigitLabError, match=r"^bomb\.zip: archive would inflate to 5,000,000 bytes"):
        read_zip(bomb, "bomb.zip", max_total_bytes=1_000_000)


def test_lying_size_header_is_refused_as_corrupt():
    honest = zip_bytes({"zeros.csv": bytes(100_000)})
    # Central directory entry: file size at offset 24 of the header that starts with PK\x01\x02.
    central = honest.rindex(b"PK\x01\x02")
    lying = bytearray(honest)
    lying[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    with pytest.raises(DigitLabError, match=r"^bomb\.zip/zeros\.csv: corrupt member"):
        read_zip(bytes(lying), "bomb.zip", max_total_bytes=50_000)


@pytest.mark.parametrize(
    "data",
    [b"not a zip at all", zip_bytes({"a.csv": b"1" * 1000})[:60], b""],
    ids=["not-a-zip", "truncated-zip", "empty"],
)
def test_corrupt_or_non_zip_files(data):
    with pytest.raises(DigitLabError, match=r"^up\.zip: not a zip file, or a corrupt one"):
        read_zip(data, "up.zip")


def test_empty_archive():
    with pytest.raises(DigitLabError, match=r"^up\.zip: archive is empty"):
        read_zip(zip_bytes({}), "up.zip")
    with pytest.raises(DigitLabError, match=r"^up\.zip: archive is empty"):
        read_zip(_zip_with("only/", "folders/"), "up.zip")


def test_duplicate_member_names():
    with pytest.warns(UserWarning):
        data = _zip_with("a.csv", "a.csv")
    with pytest.raises(DigitLabError, match=r"^up\.zip: member 'a\.csv' appears twice"):
        read_zip(data, "up.zip")
