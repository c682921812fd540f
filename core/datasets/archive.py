"""Reading a user's zip safely, entirely in memory (nothing is ever extracted to disk).

A zip from a user can lie: member names that climb out of a folder, millions of members, or a few
kilobytes that inflate to gigabytes. ``read_zip`` refuses all of these before and while reading.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path

from core.datasets.bounds import DEFAULT_MAX_MB, MIB, dataset_bounds
from core.errors import DigitLabError

MAX_MEMBERS = 200_000
#: The default bound on inflated bytes (``core.datasets.bounds``; read_zip reads the current one).
MAX_TOTAL_BYTES = DEFAULT_MAX_MB * MIB
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Every central-directory entry starts with this signature.
_CENTRAL_ENTRY = b"PK\x01\x02"


def is_zip(data: bytes) -> bool:
    """True when ``data`` starts like a zip file (a local header or an empty archive's end record)."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def safe_member_name(name: str) -> str | None:
    """The member's path with ``/`` separators, or None when it is absolute or climbs with ``..``."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        return None
    if any(part == ".." for part in posix.split("/")):
        return None
    return posix


def count_central_entries(source: bytes | Path) -> int:
    """An upper bound on the members ``zipfile`` would parse: central-directory signatures in the raw
    bytes (one per entry, plus any that occur by chance in the data).

    ``zipfile.ZipFile`` builds an object per entry before anyone can count them: a 53 MB upload of
    empty entries costs it 9 s and 400 MB. Counting first (a C-speed scan) refuses such a file cheaply.
    """
    if isinstance(source, (bytes, bytearray)):
        return source.count(_CENTRAL_ENTRY)
    count, tail = 0, b""
    with open(source, "rb") as fh:
        while chunk := fh.read(16 * _CHUNK):
            window = tail + chunk
            count += window.count(_CENTRAL_ENTRY)
            tail = window[-(len(_CENTRAL_ENTRY) - 1) :]  # a signature split across chunks is seen once
    return count


def check_member_count(source: bytes | Path, display: str, max_members: int = MAX_MEMBERS) -> None:
    """Refuse, before parsing, an archive listing more than ``max_members`` members."""
    try:
        count = count_central_entries(source)
    except OSError as err:
        raise DigitLabError(f"cannot read the file ({err.strerror or err})", display) from None
    if count > max_members:
        raise DigitLabError(f"archive has {count:,} members, more than the limit of {max_members:,}", display)


def read_zip(
    source: bytes | Path, display: str, *, max_members: int = MAX_MEMBERS, max_total_bytes: int | None = None
) -> dict[str, bytes]:
    """Every file member of a zip as ``{path inside the zip: bytes}`` (folders are skipped).

    ``source`` is the zip's bytes or its path; ``display`` names it in errors. Refuses a corrupt or
    non-zip file, an empty archive, unsafe member names, duplicate names, more than ``max_members``
    members, and more than ``max_total_bytes`` uncompressed, checked both on the sizes the archive
    declares and on the bytes actually inflated (by default the instance's dataset bound).
    """
    named = ""
    if max_total_bytes is None:  # the instance's bound: messages name its variable
        max_total_bytes, named = dataset_bounds().max_bytes, " (DIGITLAB_MAX_DATASET_MB)"
    check_member_count(source, display, max_members)
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as err:
        raise DigitLabError(f"not a zip file, or a corrupt one ({err})", display) from None
    except OSError as err:
        raise DigitLabError(f"cannot read the file ({err.strerror or err})", display) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise DigitLabError(f"archive has {len(infos):,} members, more than the limit of {max_members:,}", display)
        files = [info for info in infos if not info.is_dir()]
        if not files:
            raise DigitLabError("archive is empty", display)
        declared = sum(info.file_size for info in files)
        if declared > max_total_bytes:
            raise DigitLabError(
                f"archive would inflate to {declared:,} bytes, more than the limit of {max_total_bytes:,}{named}",
                display,
            )
        members: dict[str, bytes] = {}
        total = 0
        for info in files:
            name = safe_member_name(info.filename)
            if name is None:
                raise DigitLabError(f"unsafe member name {info.filename!r} (absolute or with '..')", display)
            if name in members:
                raise DigitLabError(f"member {name!r} appears twice", display)
            members[name], total = _read_member(zf, info, f"{display}/{name}", total, max_total_bytes)
        return members


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, display: str, total: int, max_total_bytes: int
) -> tuple[bytes, int]:
    """One member's bytes, counting actual inflated bytes against the archive-wide limit."""
    chunks = []
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > max_total_bytes:
                    raise DigitLabError(
                        f"archive inflates to more than the limit of {max_total_bytes:,} bytes", display
                    )
                chunks.append(chunk)
    except RuntimeError as err:  # zipfile raises RuntimeError for encrypted members
        raise DigitLabError(f"cannot read member ({err})", display) from None
    except NotImplementedError as err:
        raise DigitLabError(f"unsupported compression ({err})", display) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise DigitLabError(f"corrupt member ({err})", display) from None
    return b"".join(chunks), total
