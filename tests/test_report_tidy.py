"""`report --format csv` is tidy (one number per cell, intervals in their own columns) and
`--format json` holds the same values plus provenance (issue 14 item 13)."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pandas as pd
import pytest
from report_helpers import make_run, suite_tasks

from vlabench import __version__
from vlabench.report.build import report
from vlabench.report.tidy import COLUMNS

DEVIATION = "suite.tasks=[0, 1] selects 2 of 10 tasks"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tidy-runs")
    make_run(root, "base", model="openvla-oft", pruner="none", suite="libero_spatial",
             tasks=suite_tasks(9, 10, 2, latency_ms=100.0), deviations=[DEVIATION])
    make_run(root, "sparse", model="openvla-oft", pruner="sparsevlm", suite="libero_spatial",
             retention=0.5, tasks=suite_tasks(8, 10, 2, latency_ms=80.0), deviations=[DEVIATION])
    return root


@pytest.fixture(scope="module")
def frame(runs):
    text = report([str(runs)], "csv", plots=False, with_reference=True)
    assert not any(line.startswith("#") for line in text.splitlines())
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


def test_csv_columns_are_numbers_where_numbers_belong(frame):
    assert list(frame.columns) == COLUMNS
    for col in ("value", "ci_low", "ci_high"):
        assert frame[col].dtype == float
    text_cols = frame.select_dtypes(exclude="number")
    for col in text_cols:
        cells = text_cols[col].dropna().astype(str)
        assert not cells.str.contains("×|≈|▲|▼").any(), col          # no display strings
        assert not cells.str.contains(r"\[\d+\]$").any(), col          # no footnote markers
    assert set(frame.source) == {"ours", "paper"}                      # Δ rows are derived, left out


def test_csv_success_and_speedup_carry_their_intervals(frame):
    runs = frame[(frame.table == "runs") & (frame.pruner == "sparsevlm")].set_index("metric")
    sr = runs.loc["success_rate"]
    assert sr.value == 0.8   # a fraction, the unit of summary.csv and runs.csv
    # Wilson 95% of 8/10, worked by hand: centre 0.7167, half-width 0.2266
    assert sr.ci_low == pytest.approx(0.4902, abs=1e-4) and sr.ci_high == pytest.approx(0.9433, abs=1e-4)
    sp = runs.loc["speedup"]
    assert sp.value == pytest.approx(1.25) and sp.ci_low == pytest.approx(1.25) and sp.ci_high == pytest.approx(1.25)
    assert runs.loc["latency_ms"].value == 80.0 and pd.isna(runs.loc["latency_ms"].ci_low)
    assert runs.loc["episodes"].value == 10 and runs.loc["pairs"].value == 10


def test_csv_paper_table_cells_name_their_suite(frame):
    t1 = frame[(frame.table == "specprune-vla-table1-openvla-oft") & (frame.source == "ours")]
    spatial = t1[(t1.pruner == "sparsevlm") & (t1.column == "Spatial")].set_index("metric")
    assert set(spatial.suite) == {"libero_spatial"}
    assert spatial.loc["success_rate"].value == 0.8 and spatial.loc["latency_ms"].value == 80.0
    assert spatial.loc["speedup"].value == pytest.approx(1.25)
    paper = frame[(frame.table == "specprune-vla-table1-openvla-oft") & (frame.source == "paper")
                  & (frame.pruner == "sparsevlm") & (frame.column == "Spatial")].set_index("metric")
    assert paper.loc["success_rate"].value == pytest.approx(0.968)   # SpecPrune-VLA Table 1's 96.8%


def test_json_has_the_csv_values_notes_and_provenance(runs, frame):
    doc = json.loads(report([str(runs)], "json", plots=False, with_reference=True))
    assert doc["vlabench_version"] == __version__
    values = pd.DataFrame(doc["values"], columns=doc["columns"])
    assert len(values) == len(frame)
    for col in ("table", "source", "row", "column", "metric"):
        assert values[col].tolist() == frame[col].tolist()
    for col in ("value", "ci_low", "ci_high"):
        pd.testing.assert_series_equal(values[col].astype(float), frame[col], check_names=False)
    notes = {n["note"]: n["text"] for n in doc["notes"]}
    assert notes[1] == f"deviation: {DEVIATION}"
    by_name = {r["name"]: r for r in doc["runs"]}
    assert set(by_name) == {"base", "sparse"}
    for name, r in by_name.items():
        path = runs / name
        assert r["path"] == str(path.resolve()) and r["deviations"] == [DEVIATION]
        assert r["manifest_sha256"] == hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()
        assert r["device"] == "cuda:0" and r["manifest"]["run_name"] == name
    assert all(re.fullmatch(r"[a-z0-9-]+", t["key"]) for t in doc["tables"])
