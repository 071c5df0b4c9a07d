"""The published numbers: results/reference/*.csv, transcribed from the papers' tables.

Columns: paper, table, method (vlabench pruner name), model, suite, task, metric, value,
retention, variant, label (the paper's row label). An empty suite/task holds a row's summary
figures (averages, FLOPs). Metric names and units are those of `cells.metrics`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from vlabench.core.resources import REFERENCE_DIR  # inside the package when installed from a wheel
from vlabench.records.files import RecordsError

COLUMNS = ["paper", "table", "method", "model", "suite", "task", "metric", "value",
           "retention", "variant", "label"]


class RefRow(NamedTuple):
    """Which row of a paper's table: the method at a retention, with a variant."""

    paper: str
    table: str
    method: str
    model: str
    retention: float | None
    variant: str


def _ret(v: object) -> float | None:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return None
    return round(float(v), 6)


class Reference:
    """Lookup of published values by row and column."""

    def __init__(self, frame: pd.DataFrame):
        self.values: dict[RefRow, dict[tuple[str, str], dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict))
        self.labels: dict[RefRow, str] = {}
        for r in frame.itertuples(index=False):
            key = RefRow(r.paper, str(r.table), r.method, r.model, _ret(r.retention), r.variant)
            self.values[key][(r.suite, r.task)][r.metric] = float(r.value)
            self.labels.setdefault(key, r.label)

    @classmethod
    def load(cls, directory: Path = REFERENCE_DIR) -> Reference:
        files = sorted(Path(directory).glob("*.csv"))
        if not files:
            raise RecordsError(f"no reference numbers in {directory} (*.csv)")
        frames = []
        for f in files:
            df = pd.read_csv(f, comment="#", dtype=str, keep_default_na=False)
            if list(df.columns) != COLUMNS:
                raise RecordsError(f"{f}: columns {list(df.columns)}; expected {COLUMNS}")
            bad = pd.to_numeric(df["value"], errors="coerce").isna()
            if bad.any():
                raise RecordsError(f"{f}: non-numeric value {df['value'][bad].iloc[0]!r}")
            frames.append(df)
        return cls(pd.concat(frames, ignore_index=True))

    def rows(self, paper: str, table: str, model: str) -> list[RefRow]:
        """The rows of one paper table for one model, in file order."""
        return [k for k in self.values if (k.paper, k.table, k.model) == (paper, table, model)]

    def get(self, key: RefRow, suite: str, task: str = "") -> dict[str, float]:
        return dict(self.values.get(key, {}).get((suite, task), {}))
