"""Records CSV bytes -> DataFrame in one C pass, as strict as `records.files.parse_rows`.

The checks run on the raw bytes first: UTF-8, no NUL byte, the header (this records layout or an
older one), and on files without quoting every line holds exactly the header's field count (a
torn or hand-edited line). `read_frame` returns None where this fast path cannot vouch for the
file (quoted fields, CR line ends, a field count or a cell that does not parse): the caller then
parses it with `parse_rows`, which names the file, line and problem in its RecordsError.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlabench.records.files import RecordsError, decode_text, is_older_layout


def empty_column(rows: int) -> pd.Categorical:
    """A column of `rows` empty cells: one shared "" (a category), not a string per row."""
    return pd.Categorical.from_codes(np.zeros(rows, dtype=np.int8), [""])


def _header(data: bytes) -> list[str]:
    first = data.split(b"\n", 1)[0].decode("utf-8")
    return next(csv.reader([first]), [])


def _fields_ok(data: bytes, n_fields: int) -> bool:
    """Every line (a last one without its newline included) holds n_fields - 1 commas."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    if raw[-1] != ord("\n"):
        ends = np.append(ends, raw.size - 1)   # a last line without its newline is a line too
    before = np.searchsorted(np.flatnonzero(raw == ord(",")), ends)   # commas before each end
    return bool((np.diff(before, prepend=0) == n_fields - 1).all())


def read_frame(path: Path, data: bytes, columns: list[str], text: tuple[str, ...],
               drop: tuple[str, ...] = (), text_dtype: Any = "str") -> pd.DataFrame | None:
    """The rows of records CSV `data` (the bytes of `path`) in `columns` but `drop`: the `text`
    ones as `text_dtype` strings ("" when empty), the others as numbers (empty: NaN); a column an
    older layout lacks is all "" as `parse_rows` gives it. None: use the exact, slower parser."""
    decode_text(path, data)   # UTF-8 or one RecordsError line
    if b"\0" in data:
        raise RecordsError(f"{path}: holds NUL bytes; the file is damaged (binary garbage?)")
    if not data or b'"' in data or b"\r" in data:
        return None
    head = _header(data)
    if head != columns and not is_older_layout(head, columns):
        return None   # parse_rows says what is wrong with the header
    if not _fields_ok(data, len(head)):
        return None
    wanted = [c for c in columns if c not in drop]
    use = [c for c in wanted if c in head]
    try:
        df = pd.read_csv(io.BytesIO(data), usecols=use, engine="c", keep_default_na=False, low_memory=False,
                         dtype={c: (text_dtype if c in text else "float64") for c in use},
                         na_values={c: [""] for c in use if c not in text})
    except (ValueError, pd.errors.ParserError):
        return None   # a non-numeric cell: parse_rows and the numeric check name it
    for c in wanted:
        if c not in df:
            df[c] = empty_column(len(df))
    return df if list(df.columns) == wanted else df[wanted]
