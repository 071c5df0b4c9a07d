"""VLA-Pruner Table 4 (App. B.4, pi0 on LIBERO) rendered from real pi0-tiny runs.

Four short runs (vanilla, FastV 50%, VLA-Pruner 25%, VLA-Cache at its own settings) on one
LIBERO-Spatial task share one simulator (cli_runs.run_all). The expected cells are computed
here from the runs' own episodes.csv / calls.csv by the definitions in vlabench/report/cells.py's
docstring (success over episodes; latency = mean lat_total_ms of non-warm-up model calls; FLOPs =
mean per call, warm-up included; speedup and FLOP ratio against vanilla), the paper's rows are
typed from VLA-Pruner (arXiv:2511.16449) Table 4.
"""

from __future__ import annotations

import pytest
from cli_runs import run_all
from conftest import run_cli

from vlabench.report.grid import to_table
from vlabench.report.layouts import LAYOUTS
from vlabench.report.reference import Reference
from vlabench.report.runs import RunSet

COMMON = ["model=pi0-tiny", "suite=libero_spatial", "suite.tasks=[0]", "run.episodes_per_task=1",
          "run.max_steps=16"]
RUNS = {"Vanilla": ["pruner=none"], "FastV": ["pruner=fastv", "pruner.retention=0.5"],
        "VLA-Pruner": ["pruner=vla-pruner", "pruner.retention=0.25"], "VLA-Cache": ["pruner=vla-cache"]}
KEY = "vla-pruner-table4-pi0-tiny"
# the paper's rows (Table 4) as the layout formats them: 4 SRs, Avg., Acc., latency, speedup, FLOP ratio
PAPER = {"Vanilla": ["96.90", "98.30", "96.10", "84.80", "94.03", "100.00", "104.53", "1.000", "100.0"],
         "FastV 50%": ["95.26", "95.46", "92.58", "81.34", "91.16", "96.92", "66.44", "1.573", "60.7"],
         "VLA-Pruner 25%": ["95.28", "96.25", "95.71", "84.04", "98.78", "98.78", "60.38", "1.731", "40.1"],
         "SparseVLM 12.5%": ["72.04", "64.98", "63.55", "30.99", "57.89", "60.71", "53.79", "1.943", "31.3"]}


@pytest.fixture(scope="module")
def t4(tmp_path_factory):
    root = tmp_path_factory.mktemp("vp4")
    res = run_all(root, RUNS, COMMON)
    for key, (rc, eps, calls) in res.items():
        assert rc in (0, None), key
        assert len(eps) == 1 and (calls["source"] == "model").sum() >= 2, key
    rs = RunSet.load([str(root)])
    grids = LAYOUTS["vla-pruner/4"](rs, Reference.load())
    assert [g.key for g in grids] == [KEY]
    return root, res, to_table(grids[0])


def _measured(eps, calls) -> tuple[float, float, float]:
    """(success %, mean model-call latency ms without warm-up, mean FLOPs per call)."""
    live = calls[(calls["source"] == "model") & (calls["warmup"].astype(int) != 1)]
    return (100.0 * eps["success"].astype(int).mean(), live["lat_total_ms"].astype(float).mean(),
            calls["flops"].astype(float).mean())


def _rows(t, kind: str) -> dict[str, list[str]]:
    return {r[0].split(" [")[0]: r for r, k in zip(t.rows, t.kinds, strict=True) if k == kind}


def test_table4_rows_carry_the_measured_success_latency_speedup_and_flop_ratio(t4):
    root, res, t = t4
    assert t.header == ["Method", "Spatial", "Object", "Goal", "Long", "Avg. (%)", "Acc. (%)",
                        "Latency(ms)", "Speedup (×)", "FLOP ratio (%)"]
    assert "π0 (tiny)" in t.title
    ours = _rows(t, "ours")
    assert set(ours) == set(RUNS)
    sr0, lat0, fl0 = _measured(*res["Vanilla"][1:])
    for label in RUNS:
        sr, lat, fl = _measured(*res[label][1:])
        row = ours[label]
        assert row[1] == row[5] == f"{sr:.2f}", label            # Spatial, and Avg. over that one suite
        assert row[2:5] == ["—"] * 3, label                       # Object, Goal, Long: no runs
        assert row[6] == ("n/a" if sr0 == 0 else f"{100 * sr / sr0:.2f}"), label
        assert row[7] == f"{lat:.2f}", label
        assert row[8] == f"{lat0 / lat:.3f}", label
        assert row[9] == f"{100 * fl / fl0:.1f}", label
    assert ours["Vanilla"][8:] == ["1.000", "100.0"]


def test_table4_groups_rows_by_retention_with_vla_cache_under_other_settings(t4):
    _, _, t = t4
    labels = [r[0].split(" [")[0] for r in t.rows]
    groups = [r[0] for r, k in zip(t.rows, t.kinds, strict=True) if k == "group"]
    assert groups == ["Upper bound (100%)", "Retain 50% tokens", "Retain 25% tokens",
                      "Retain 12.5% tokens", "Other settings"]
    g = {name: labels.index(name) for name in groups}
    assert g["Upper bound (100%)"] < labels.index("Vanilla") < g["Retain 50% tokens"]
    assert g["Retain 50% tokens"] < labels.index("FastV") < g["Retain 25% tokens"]
    assert g["Retain 25% tokens"] < labels.index("VLA-Pruner") < g["Retain 12.5% tokens"]
    assert g["Other settings"] < labels.index("VLA-Cache")


def test_table4_with_reference_puts_the_papers_numbers_beside_ours(t4):
    _, _, t = t4
    paper = _rows(t, "paper")
    assert paper["paper: Vanilla"][1:] == PAPER["Vanilla"]
    assert paper["paper: FastV"][1:] == PAPER["FastV 50%"]
    assert paper["paper: VLA-Pruner"][1:] == PAPER["VLA-Pruner 25%"]
    i = next(i for i, r in enumerate(t.rows) if r[0].startswith("FastV") and t.kinds[i] == "ours")
    assert t.kinds[i:i + 3] == ["ours", "paper", "delta"]
    # the methods we did not run are the paper's alone, in their retention group (3 groups x 5 methods)
    only = [r for r in t.rows if r[0].endswith("(paper only)")]
    assert len(only) == 15 - 2 and ["SparseVLM (paper only)", *PAPER["SparseVLM 12.5%"]] in only
    # our VLA-Cache (no retention) is not matched to a budget-matched VLA-Cache row of the paper
    assert sum(r[0] == "VLA-Cache (paper only)" for r in only) == 3


def test_cli_report_with_reference_prints_table4_and_no_openvla_table_for_pi0(t4):
    root, _, _ = t4
    res = run_cli("report", str(root), "--with-reference")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "VLA-Pruner Table 4 (π0 (tiny))" in out
    assert "| paper: FastV | " + " | ".join(PAPER["FastV 50%"]) + " |" in out
    assert "VLA-Pruner Table 1" not in out      # Table 1 is OpenVLA / OpenVLA-OFT's
