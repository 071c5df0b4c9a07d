"""suite.timing on the real LIBERO simulator: frozen records unchanged, a sync run, the report."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

from vlabench.core.schema import MEASURED_CALL_COLUMNS, TIMING_CALL_COLUMNS, TIMING_EPISODE_COLUMNS

pytestmark = pytest.mark.libero
FIXTURE = Path(__file__).parent / "fixtures" / "frozen_oracle"
MEASURED_EPISODE = {"wall_s", "sim_s", "policy_s"}
ARGS = ("model=oracle", "suite=libero_spatial", "suite.tasks=[0]", "run.quiet=true")


def blanked(text: str, measured: set[str], columns: list[str] | None = None) -> str:
    """`text` (a records CSV) with the machine-measured cells emptied, on `columns` (default:
    its own header; another layout's columns: the cells of those columns only)."""
    rows = list(csv.reader(io.StringIO(text)))
    head = rows[0]
    columns = head if columns is None else columns
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows[1:]:
        cell = dict(zip(head, r, strict=True))
        w.writerow(["" if c in measured else cell[c] for c in columns])
    return out.getvalue()


def header(text: str) -> list[str]:
    return text.split("\n", 1)[0].split(",")


def test_a_frozen_run_writes_the_records_of_the_code_before_timing_existed(tmp_path):
    res = run_cli("run", *ARGS, "run.episodes_per_task=2", f"run.output_dir={tmp_path}")
    assert res.returncode == 0, res.stderr
    run = tmp_path / "oracle-none-libero_spatial"
    # no timing column and every cell of the earlier layout's columns as before (columns other
    # features appended since, e.g. calls.csv `batch`, are not timing's to judge)
    for name, measured in (("episodes.csv", MEASURED_EPISODE), ("calls.csv", set(MEASURED_CALL_COLUMNS))):
        text, old = (run / name).read_text(), (FIXTURE / name).read_text()
        assert not set(header(text)) & (set(TIMING_EPISODE_COLUMNS) | set(TIMING_CALL_COLUMNS))
        assert [c for c in header(text) if c in header(old)] == header(old)
        assert blanked(text, measured, header(old)) == old
    cfg = yaml.safe_load((run / "config.yaml").read_text().replace(str(tmp_path), "OUTPUT_DIR"))
    old = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    assert "timing" not in cfg and "timing" not in cfg["suite"]
    assert_contains(cfg, old)


def assert_contains(have: dict, old: dict, path: str = "") -> None:
    """Every setting of the earlier config, with its value (settings added since are not timing's)."""
    for k, v in old.items():
        assert k in have, f"{path}{k} is gone"
        if isinstance(v, dict):
            assert_contains(have[k], v, f"{path}{k}.")
        else:
            assert have[k] == v, f"{path}{k}: {have[k]!r} != {v!r}"


def test_a_sync_run_holds_counts_held_steps_and_the_report_shows_the_latency_table(tmp_path):
    for extra in (["suite.timing=frozen"], ["suite.timing=sync", "timing.latency=100ms"]):
        res = run_cli("run", *ARGS, "run.episodes_per_task=1", f"run.output_dir={tmp_path}", *extra)
        assert res.returncode == 0, res.stderr
    run = tmp_path / "oracle-none-libero_spatial__timing=sync,latency=100ms"
    ep = next(csv.DictReader(io.StringIO((run / "episodes.csv").read_text())))
    calls = list(csv.DictReader(io.StringIO((run / "calls.csv").read_text())))
    # every call of a 1-action policy costs 2 held steps at 20 Hz (3 steps per call), the
    # last call's cut short by the step limit
    assert all(c["delay_steps"] == "2" and c["sim_latency_ms"] == "100.0" for c in calls)
    steps = int(ep["steps"])
    assert int(ep["held_steps"]) == sum(min(2, steps - int(c["step"])) for c in calls)
    assert steps == 220 and [int(c["step"]) for c in calls] == list(range(0, 220, 3))
    assert float(ep["jerk_p95"]) >= float(ep["jerk_mean"]) > 0 and float(ep["path_ratio"]) >= 1
    assert '"mode": "sync"' in (run / "manifest.json").read_text()
    res = run_cli("report", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "Latency-aware evaluation: oracle on libero_spatial" in res.stdout
    for col in ("Frozen SR %", "sync@100ms SR %", "sync@100ms completion (s)", "sync@100ms jerk mean / p95"):
        assert col in res.stdout
