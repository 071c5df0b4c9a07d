"""`vlabench report --ci-unit episode|call`: the speedup intervals resample whole episodes by
default (calls of one episode are correlated), calls on request; the captions say which; the
point estimates do not depend on it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlabench.commands.cli import app
from vlabench.metrics.stats import bootstrap_interval, mean_of_ratios, ratio_of_means
from vlabench.report import build, cells, replay
from vlabench.report.cells import Col
from vlabench.report.runs import RunSet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """vanilla and FastV 50% on two suites; every episode's calls share a latency offset (sd 15 ms)."""
    spec = importlib.util.spec_from_file_location("fabricate_grid", ROOT / "scripts" / "fabricate_grid.py")
    fab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fab)
    root = tmp_path_factory.mktemp("correlated")
    rng = np.random.default_rng(6)
    for suite in ("libero_spatial", "libero_goal"):
        for pruner, retention in [("none", None), ("fastv", 0.5)]:
            fab.write_run(root, pruner, retention, suite, episodes=4, calls_per_episode=12, rng=rng,
                          episode_sd=15.0)
    return root


def _pairs(rs: RunSet):
    out = []
    for run in sorted((r for r in rs.runs if r.pruner != "none"), key=lambda r: r.suite):
        out.append((rs.baseline(run.model, run.suite, run.protocol)[0], run))
    return out


def test_episode_intervals_are_wider_on_correlated_calls_with_the_same_point(grid):
    rs = RunSet.load([str(grid)])
    for base, run in _pairs(rs):
        col = Col("", run.suite)
        ep = cells.metrics(run, base, col, boot=True, unit="episode")
        call = cells.metrics(run, base, col, boot=True, unit="call")
        assert ep["speedup"] == call["speedup"] == pytest.approx(
            cells.own(base, col).step_lat.mean() / cells.own(run, col).step_lat.mean(), rel=1e-15)
        assert ep["speedup_ci_low"] < ep["speedup"] < ep["speedup_ci_high"]
        width = ep["speedup_ci_high"] - ep["speedup_ci_low"]
        assert width > 2 * (call["speedup_ci_high"] - call["speedup_ci_low"]), (ep, call)
        b, o = cells.own(base, col), cells.own(run, col)
        assert (ep["speedup_ci_low"], ep["speedup_ci_high"]) == bootstrap_interval(
            [b.step_clusters, o.step_clusters], ratio_of_means, n_boot=cells.N_BOOT)
    pairs = _pairs(rs)
    cols = [Col("", r.suite) for _, r in pairs]
    lo, hi = cells.mean_speedup_ci(pairs, cols, "episode")
    clo, chi = cells.mean_speedup_ci(pairs, cols, "call")
    assert hi - lo > 2 * (chi - clo)
    owned = [cells.own(r, c) for pair, c in zip(pairs, cols, strict=True) for r in pair]
    assert (lo, hi) == bootstrap_interval([o.step_clusters for o in owned], mean_of_ratios, n_boot=cells.N_BOOT)


def test_the_clusters_are_the_runs_episodes(grid):
    rs = RunSet.load([str(grid)])
    base, run = _pairs(rs)[0]
    o = cells.own(run, Col("", run.suite))
    c = o.step_clusters
    assert c.size == len(run.episodes) and c.counts.sum() == o.step_lat.size
    calls = run.calls[run.calls["warmup"] != 1]
    per = calls.groupby(["task_id", "episode"])["lat_total_ms"].agg(["sum", "size"])
    assert np.allclose(np.sort(c.sums), np.sort(per["sum"].to_numpy()), rtol=1e-12)
    assert sorted(c.counts) == sorted(per["size"].astype(float))


def _speedup_cells(text: str) -> list[tuple[str, str]]:
    return re.findall(r"(\d+\.\d\d)× \[(\d+\.\d\d, \d+\.\d\d)\]", text)


def test_the_report_names_its_unit_and_only_the_intervals_change(grid):
    ep = build.report([str(grid)], "md", plots=False)
    call = build.report([str(grid)], "md", plots=False, ci_unit="call")
    assert "speedup with 95% bootstrap interval (episodes resampled)" in ep
    assert "(95% bootstrap interval, episodes resampled per suite)" in ep
    assert "speedup with 95% bootstrap interval (calls resampled)" in call
    e, c = _speedup_cells(ep), _speedup_cells(call)
    assert len(e) == len(c) >= 3 and [s for s, _ in e] == [s for s, _ in c]
    assert [ci for _, ci in e] != [ci for _, ci in c]
    strip = re.compile(r"\[\d+\.\d\d, \d+\.\d\d\]|(episodes|calls) resampled")
    assert strip.sub("", ep) == strip.sub("", call)


def test_a_bad_unit_is_one_line_and_exit_2(grid, cli, tmp_path):
    res = cli("report", str(grid), "--ci-unit", "task", "--out", str(tmp_path / "rep"))
    assert res.returncode == 2 and not (tmp_path / "rep").exists()
    assert res.stderr.strip().splitlines() == ["vlabench: error: unknown --ci-unit 'task'; choose one of episode, call"]
    assert "--ci-unit" in " ".join(CliRunner().invoke(app, ["report", "--help"], terminal_width=200).output.split())


def test_the_replays_paired_bootstrap_draws_episodes_together():
    rng = np.random.default_rng(3)
    episode = np.repeat(np.arange(40), 8)
    base = 100 + rng.normal(0, 20, 40)[episode] + rng.normal(0, 1, episode.size)
    step = base / (2 + rng.normal(0, 0.3, 40))[episode]   # each episode (scene) its own speedup
    s, lo, hi = replay.paired_speedup(base, step, True, episode, "episode")
    s2, clo, chi = replay.paired_speedup(base, step, True, episode, "call")
    assert s == s2 == pytest.approx(base.mean() / step.mean(), rel=1e-15)
    assert lo < s < hi and hi - lo > 1.5 * (chi - clo)
    one = replay.paired_speedup(base, step, True, np.arange(base.size), "episode")
    assert one == (s2, clo, chi)   # one pair per episode: the call bootstrap's interval
