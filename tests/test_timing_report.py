"""The latency-aware report table on fabricated runs: pairing within a mode, completion, jerk."""

from __future__ import annotations

import csv
import io

import yaml
from report_helpers import TaskSpec, make_run

from vlabench.report.runs import RunSet
from vlabench.report.timing_table import latency_tables


def timed(d, mode, latency, completion, jerk):
    """Make the fabricated run `d` a suite.timing run whose episodes carry the timing columns."""
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["suite"]["timing"] = mode
    cfg["timing"] = {"latency": latency, "hold": "zero"}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rows = list(csv.DictReader(io.StringIO((d / "episodes.csv").read_text())))
    for r in rows:
        r["completion_s"] = completion if r["success"] == "1" else ""
        r["jerk_mean"], r["jerk_p95"] = jerk, 2 * jerk
    out = io.StringIO()
    w = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    (d / "episodes.csv").write_text(out.getvalue())


def test_each_mode_pairs_with_vanilla_of_the_same_mode_and_latency(tmp_path):
    common = {"model": "openvla-oft", "suite": "libero_spatial"}
    make_run(tmp_path, "none-frozen", pruner="none", tasks=[TaskSpec("t", 10, 10)], **common)
    make_run(tmp_path, "fastv-frozen", pruner="fastv", retention=0.25, tasks=[TaskSpec("t", 9, 10)], **common)
    timed(make_run(tmp_path, "none-sync", pruner="none", tasks=[TaskSpec("t", 2, 10)], **common),
          "sync", "400ms", 12.0, 30.0)
    timed(make_run(tmp_path, "fastv-sync", pruner="fastv", retention=0.25,
                   tasks=[TaskSpec("t", 8, 10, successes=[0, 0] + [1] * 8)], **common),
          "sync", "400ms", 9.0, 20.0)
    [t] = latency_tables(RunSet.load([str(tmp_path)]))
    assert t.header[:5] == ["Method", "Frozen SR %", "sync@400ms SR %", "sync@400ms completion (s)",
                            "sync@400ms jerk mean / p95 (m/s³)"]
    rows = {r[0]: r for r in t.rows}
    assert rows["Vanilla"][1:5] == ["100.0", "20.0", "12.00", "30 / 60"]
    fastv = [r for k, r in rows.items() if k.startswith("FastV")][0]
    # frozen: 9 vs 10 (1 discordant pair, p = 1); sync: vanilla's episodes 0-1 succeed, FastV's
    # 2-9: 8 discordant in FastV's favour and 2 against, McNemar exact p = 0.109
    assert fastv[1] == "90.0 (-10.0 ≈, p=1)"
    assert fastv[2] == "80.0 (+60.0 ≈, p=0.11)"
    assert fastv[3:5] == ["9.00", "20 / 40"]
