"""What a job's request and result are kept as in the store: tagged JSON, never pickle.

The job table is read by every replica, so what it holds must not be able to run code when read
back (the lab's rule: no pickle anywhere in core). The values background work exchanges are
plain JSON plus a few tagged types: tuples, bytes, NumPy arrays (``.npy`` without pickled
objects), pandas DataFrames (column by column, with their ``attrs``), and dataclasses declared
under ``core`` (rebuilt only if the named class is one).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import io
import json
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DigitLabError


def encode(value: Any) -> bytes:
    """``value`` as tagged JSON bytes (DigitLabError for a value of a type not listed above)."""
    try:
        return json.dumps(_pack(value), separators=(",", ":"), allow_nan=True).encode()
    except TypeError as err:
        raise DigitLabError(f"cannot keep this value in the store: {err}") from None


def decode(data: bytes) -> Any:
    """The value :func:`encode` made ``data`` of."""
    return _unpack(json.loads(data))


def _pack(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "__t" not in value:
            return {k: _pack(v) for k, v in value.items()}
        return {"__t": "dict", "items": [[_pack(k), _pack(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [_pack(v) for v in value]
    if isinstance(value, tuple):
        return {"__t": "tuple", "items": [_pack(v) for v in value]}
    if isinstance(value, (bytes, bytearray)):
        return {"__t": "bytes", "b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, np.ndarray):
        out = io.BytesIO()
        np.save(out, value, allow_pickle=False)
        return {"__t": "ndarray", "b64": base64.b64encode(out.getvalue()).decode()}
    if isinstance(value, pd.DataFrame):
        return {
            "__t": "dataframe",
            "columns": [_pack(c) for c in value.columns],
            "data": [_column(value.iloc[:, i]) for i in range(value.shape[1])],
            "index": _column(value.index.to_series()),
            "attrs": _pack(dict(value.attrs)),
        }
    if isinstance(value, PurePath):
        return {"__t": "path", "path": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith("core."):
            raise TypeError(f"a {cls.__name__} is not one of the lab's own records")
        fields = {f.name: _pack(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"__t": "record", "type": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    raise TypeError(f"a {type(value).__name__} value")


def _column(series: pd.Series) -> Any:
    """A column as an array where NumPy keeps it without pickle (numbers, booleans), else a list."""
    if series.dtype.kind in "biufcmM":
        return _pack(series.to_numpy())
    return [_pack(None if v is pd.NA else v) for v in series.tolist()]


def _unpack(value: Any) -> Any:
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("__t")
    if tag is None:
        return {k: _unpack(v) for k, v in value.items()}
    if tag == "dict":
        return {_unpack(k): _unpack(v) for k, v in value["items"]}
    if tag == "tuple":
        return tuple(_unpack(v) for v in value["items"])
    if tag == "bytes":
        return base64.b64decode(value["b64"])
    if tag == "ndarray":
        return np.load(io.BytesIO(base64.b64decode(value["b64"])), allow_pickle=False)
    if tag == "dataframe":
        columns = [_unpack(c) for c in value["columns"]]
        frame = pd.DataFrame(
            {i: _unpack(data) for i, data in enumerate(value["data"])}, index=pd.Index(_unpack(value["index"]))
        )
        frame.columns = pd.Index(columns) if columns else frame.columns
        frame.attrs.update(_unpack(value["attrs"]))
        return frame
    if tag == "path":
        return PurePath(value["path"])
    if tag == "record":
        return _record(value["type"], {k: _unpack(v) for k, v in value["fields"].items()})
    raise DigitLabError(f"the store holds a value of an unknown kind {str(tag)[:40]!r}")


def _record(name: str, fields: dict[str, Any]) -> Any:
    """Rebuild a dataclass of the lab's own, and nothing else."""
    module, _, qualname = name.partition(":")
    if not module.startswith("core."):
        raise DigitLabError(f"the store names a record type outside the lab: {name[:80]!r}")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not (isinstance(target, type) and dataclasses.is_dataclass(target)):
        raise DigitLabError(f"the store names something that is not a record type: {name[:80]!r}")
    return target(**fields)
