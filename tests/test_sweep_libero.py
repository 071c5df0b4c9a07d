"""Issue 12's acceptance on real LIBERO episodes: a sweep fills the report's table with speedups,
and a preset runs (tiny settings) and is then planned as complete."""

from __future__ import annotations

import pytest

from conftest import run_cli

TINY = ["suite=libero_spatial", "suite.tasks=[0]", "run.episodes_per_task=1", "run.max_steps=8",
        "model=openvla-oft-tiny", "run.quiet=true"]


@pytest.mark.libero
@pytest.mark.slow
def test_acceptance_sweep_makes_three_runs_and_the_report_has_speedups(tmp_path):
    res = run_cli("run", "-m", "pruner=none,fastv", "pruner.retention=0.5,0.25", *TINY,
                  f"run.output_dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines()[:2] == [
        "note: pruner.retention dropped from 2 job(s) whose config has no such setting; "
        "1 identical job(s) removed, each config runs once", "sweep: 3 runs (launcher: local)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "openvla-oft-tiny-fastv-libero_spatial__retention=0.25,run.max_steps=8",
        "openvla-oft-tiny-fastv-libero_spatial__run.max_steps=8",
        "openvla-oft-tiny-none-libero_spatial__run.max_steps=8"]
    rep = run_cli("report", str(tmp_path))
    assert rep.returncode == 0, rep.stderr[-2000:]
    cells = _speedup_cells(rep.stdout, "| openvla-oft-tiny | FastV (")
    assert len(cells) >= 2 and all("×" in c and "n/a" not in c for c in cells), cells


def _speedup_cells(text: str, row_start: str) -> list[str]:
    """The speedup cells of the rows starting with `row_start`, found by each table's header."""
    out, header = [], None
    for line in text.splitlines():
        if line.startswith("| ") and header is None:
            header = [c.strip() for c in line.strip("|").split("|")]
        elif not line.startswith("|"):
            header = None
        elif line.startswith(row_start) and header:
            cells = [c.strip() for c in line.strip("|").split("|")]
            out += [c for h, c in zip(header, cells) if "speedup" in h.lower()]
    return out


@pytest.mark.libero
@pytest.mark.slow
def test_nightly_preset_runs_tiny_and_plan_then_reports_it_complete(tmp_path):
    args = ["+experiment=nightly", *TINY, f"run.output_dir={tmp_path}"]
    res = run_cli("run", *args)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3
    plan = run_cli("plan", *args)
    assert plan.returncode == 0, plan.stderr
    assert "3 run(s), 3 episodes planned, 0 left" in plan.stdout
    assert plan.stdout.count(" complete ") == 3
