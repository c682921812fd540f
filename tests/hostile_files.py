"""Hostile and broken files built in memory for the security and malformed-input tests.

Zip bombs are assembled from raw DEFLATE blocks rather than compressed for real: one megabyte of
zeros, closed with a full flush, encodes to the same bytes every time, so a bomb of N megabytes is
that block repeated N times (0.6 s for a gigabyte instead of 9 s), and the archive around it is
written by hand, so its headers can say whatever a test needs, truthful or not.
"""

from __future__ import annotations

import functools
import io
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

MIB = 1 << 20
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a final, empty, fixed-Huffman DEFLATE block


@functools.cache
def _zero_block() -> bytes:
    """Raw DEFLATE of one MiB of zeros, ending in a full flush (so copies can follow each other)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)


def deflated_zeros(mib: int, prefix: bytes = b"") -> tuple[bytes, int, int]:
    """(raw DEFLATE stream, CRC-32, size) of ``prefix`` followed by ``mib`` MiB of zeros."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    crc, zeros = zlib.crc32(prefix), bytes(MIB)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return head + _zero_block() * mib + _FINAL_EMPTY_BLOCK, crc, len(prefix) + mib * MIB


@dataclass(frozen=True)
class RawMember:
    """A zip member as stored: name, bytes as written (DEFLATE or stored), CRC, and the two sizes
    the headers claim (``declared_size`` may lie about ``size``)."""

    name: str
    data: bytes
    crc: int
    size: int
    deflated: bool = True
    declared_size: int | None = None


def raw_zip(members: list[RawMember]) -> bytes:
    """A zip archive written by hand (no zip64: every size under 4 GiB)."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        method = 8 if m.deflated else 0
        size = m.size if m.declared_size is None else m.declared_size
        fields = (20, 0, method, 0, 0x21, m.crc, len(m.data), size, len(name), 0)
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + m.data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


def zeros_member(name: str, mib: int, declared_mib: float | None = None) -> RawMember:
    data, crc, size = deflated_zeros(mib)
    declared = None if declared_mib is None else int(declared_mib * MIB)
    return RawMember(name, data, crc, size, declared_size=declared)


def stored_member(name: str, data: bytes) -> RawMember:
    return RawMember(name, data, zlib.crc32(data), len(data), deflated=False)


def central_directory_bomb(entries: int) -> bytes:
    """A zip of one empty member listed ``entries`` times in its central directory (47 bytes per
    listing): what costs ``zipfile`` an object per listing before any limit can count them."""
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, 0, 0, 0, 1, 0) + b"a"
    record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
    central = (record + b"a") * entries
    count = min(entries, 0xFFFF)
    return local + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)


def npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """The header of a ``.npy`` file declaring ``shape`` (the data is not included)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An uncompressed ``.npz`` of ``arrays`` (object arrays are pickled, as NumPy allows when asked)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.save(member, array, allow_pickle=True)
            zf.writestr(f"{key}.npy", member.getvalue())
    return buffer.getvalue()


def good_arrays(n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": np.arange(n_test) % 10,
    }


class Tripwire:
    """Unpickling this creates ``path`` (a folder): proof that a pickle was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return os.mkdir, (self.path,)


def pickle_tripwire(path: str) -> bytes:
    return pickle.dumps(Tripwire(path))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` 8-bit gray pixels: a valid black image when
    small, else a header over 64 bytes of pixel data."""
    rows = bytes((width + 1) * height) if width * height <= MIB else bytes(64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


# ---- a hostile student's files, names and links (issue 26) --------------------------------------

#: Class names a hostile student puts in an NPZ: Markdown images and links (a beacon, a phish),
#: Streamlit directives, raw HTML, and spreadsheet formulas. Ten different names, each at most 40
#: characters, so the loader keeps them as they are.
HOSTILE_CLASS_NAMES = (
    "![t](http://127.0.0.1:9/beacon.png)",
    "[phish](http://127.0.0.1:9/login)",
    "**bold**",
    ":red[RED]",
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://x","y")',
    "+SUM(A1)",
    "-2+3",
    "@cmd",
    "<a href='http://x'>x</a>",
)


def npz_bomb(images: int = 1_360_000) -> bytes:
    """An NPZ whose ``x_train`` holds ``images`` zero images (28x28 uint8), deflated: the issue's
    6 MB upload that inflated to a gigabyte. The other arrays are small and honest."""
    stream, crc, size = deflated_zeros(images * 784 // MIB + 1, npy_header((images, 28, 28)))
    # The member holds a little more than the header declares: numpy reads only what it declares.
    members = [RawMember("x_train.npy", stream, crc, size)]
    small = npz_bytes(**good_arrays())
    with zipfile.ZipFile(io.BytesIO(small)) as zf:
        members += [stored_member(name, zf.read(name)) for name in zf.namelist() if name != "x_train.npy"]
    return raw_zip(members)


#: Values a hostile link carries: numbers Python reads as digits but int() does not, huge and
#: non-finite numbers, deep JSON, damaged compact pipelines, paths, markup, control characters.
HOSTILE_VALUES = (
    "²",
    "¹²",
    "٣",
    "-1",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "0x10",
    "9" * 400,
    "1" * 5000,
    "",
    " ",
    "\x00",
    "%00",
    "[" * 2000,
    "[" * 2000 + "]" * 2000,
    "{" * 1500,
    '[{"step": ' * 800,
    '[{"step":"normalize","x":' + "[" * 900,
    "z.",
    "z.!!!!",
    "z.eNqLjgUAARUAuQ",
    "z." + "A" * 3000,
    "z.eJzLSM3JyVcozy_KSQEAGgQEXQ",
    "null",
    "[]",
    "{}",
    '[{"step": "threshold", "thresh": 1e400}]',
    '[{"step": "erode", "kernel": -5}]',
    '[{"step": "nope"}]',
    '[{"step": "normalize"}]' * 3,
    "[" + ",".join(['{"step":"normalize"}'] * 200) + "]",
    "../../etc/passwd",
    "file:/etc/passwd",
    "file:../runs",
    "/etc/passwd",
    "C:\\Windows",
    "default:../../x",
    "default:full",
    "default:tiny",
    "fashion-mnist:huge",
    "<script>alert(1)</script>",
    "![x](http://x/b.png)",
    ":red[x]",
    "javascript:alert(1)",
    "\u202eevil",
    "😀" * 50,
    "H",
    "G",
    "cnn",
    "h\nG",
    "0.5",
    "1.5",
    "-0.0",
    "test",
    "0" * 60,
    "abcdef0123456789",
    "ffffffffffffffffffffffff",
    "../x",
    "a" * 40,
    "true",
    "off",
    "128,64",
    "128," * 200,
    "-3,5",
    "3" + "\u0663",
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
)
#: Keys the pages read, and some they do not.
HOSTILE_KEYS = (
    "pipeline",
    "dataset",
    "preset",
    "epochs",
    "hidden",
    "learning_rate",
    "batch_size",
    "dropout",
    "conv_filters",
    "activation",
    "optimizer",
    "early_stop",
    "validation",
    "seed",
    "run",
    "true",
    "predicted",
    "grid",
    "page",
    "embed",
    "x" * 300,
    "",
    "__proto__",
    "pipeline[]",
)


def hostile_queries(count: int, seed: int) -> list[dict[str, str]]:
    """``count`` query strings of one to four hostile parameters, the same for the same seed."""
    import random

    rng = random.Random(seed)
    return [
        {rng.choice(HOSTILE_KEYS): rng.choice(HOSTILE_VALUES) for _ in range(rng.randint(1, 4))} for _ in range(count)
    ]
