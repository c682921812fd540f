"""What the job table keeps of a task's request and result: tagged JSON that round-trips the values
background work exchanges, and refuses to rebuild anything that is not the lab's own record."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.errors import DigitLabError
from core.execution.shipping import Shipment
from core.store import codec


def test_requests_and_results_round_trip_with_their_types():
    frame = pd.DataFrame({"index": [3, 1], "label": ["٣", "1"], "p": [0.25, np.nan], "ok": [True, False]})
    frame.attrs["examined"] = 12
    value = {
        "spec": "default:tiny",
        "pair": (1, b"\x00\xff"),
        "x": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "frame": frame,
        "ship": Shipment("digits.zip", b"PK"),
        7: None,
    }
    back = codec.decode(codec.encode(value))
    assert back["pair"] == (1, b"\x00\xff") and back["ship"] == Shipment("digits.zip", b"PK") and back[7] is None
    assert back["x"].dtype == np.uint8 and back["x"].tolist() == [[0, 1, 2], [3, 4, 5]]
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert back["frame"].attrs == {"examined": 12}


def test_only_the_labs_own_records_are_rebuilt():
    forged = json.dumps({"__t": "record", "type": "os:system", "fields": {}}).encode()
    with pytest.raises(DigitLabError, match="outside the lab"):
        codec.decode(forged)
    not_a_record = json.dumps({"__t": "record", "type": "core.store.codec:decode", "fields": {}}).encode()
    with pytest.raises(DigitLabError, match="not a record type"):
        codec.decode(not_a_record)
    with pytest.raises(DigitLabError, match="cannot keep"):
        codec.encode({"f": lambda: None})
