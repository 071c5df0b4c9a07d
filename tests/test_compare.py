"""`vlabench compare`: the regression gate's verdicts and exit codes."""

from __future__ import annotations

import shutil

import pytest
from report_helpers import TaskSpec, make_run, suite_tasks

from vlabench.registry import ConfigError
from vlabench.report.compare import compare


def _results(root, sr_k=45, lat=100.0, suites=("libero_spatial", "libero_goal"), successes=None):
    for suite in suites:
        tasks = suite_tasks(sr_k, 50, 5, latency_ms=lat)
        if successes is not None:
            tasks = [TaskSpec(f"task {i}", sum(s), len(s), latency_ms=lat, successes=s)
                     for i, s in enumerate(successes)]
        make_run(root, f"fastv-{suite}", model="openvla-oft", pruner="fastv", suite=suite,
                 retention=0.5, tasks=tasks)
    return root


def test_identical_inputs_pass_with_exit_0(cli, tmp_path):
    base = _results(tmp_path / "base")
    shutil.copytree(base, tmp_path / "new")
    res = cli("compare", str(base), str(tmp_path / "new"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK: no regression" in res.stdout and res.stdout.count("| ok |") == 2


def test_constructed_success_regression_fails_with_exit_1(cli, tmp_path):
    base = _results(tmp_path / "base", sr_k=45)
    new = _results(tmp_path / "new", sr_k=30, suites=("libero_spatial",))
    _results(tmp_path / "new", sr_k=45, suites=("libero_goal",))
    res = cli("compare", str(base), str(new))
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(row for row in res.stdout.splitlines() if "libero_spatial" in row)
    assert "REGRESSION: success" in line and "90.0 → 60.0" in line and "-30.0" in line
    assert "libero_goal" in res.stdout and "FAIL" in res.stdout


def test_small_drop_within_noise_does_not_fail(tmp_path):
    base = _results(tmp_path / "base", sr_k=45)
    new = _results(tmp_path / "new", sr_k=42)  # -6 points, 3 discordant pairs: p = 0.25
    table, failed = compare(str(base), str(new), max_sr_drop=2.0)
    assert not failed
    assert all("within noise" in r[-1] for r in table.rows)


def test_drop_under_threshold_passes_even_if_significant(tmp_path):
    base = _results(tmp_path / "base", sr_k=45)
    new = _results(tmp_path / "new", sr_k=30)
    assert compare(str(base), str(new), max_sr_drop=40.0)[1] is False


def test_latency_increase_beyond_threshold_fails(tmp_path):
    base = _results(tmp_path / "base", lat=100.0)
    new = _results(tmp_path / "new", lat=115.0)
    table, failed = compare(str(base), str(new), max_latency_increase=10.0)
    assert failed and all(r[-1] == "REGRESSION: latency" for r in table.rows)
    assert compare(str(base), str(new), max_latency_increase=20.0)[1] is False


def test_run_missing_from_new_fails(tmp_path):
    base = _results(tmp_path / "base")
    new = _results(tmp_path / "new", suites=("libero_spatial",))
    table, failed = compare(str(base), str(new))
    assert failed and any("missing in NEW" in r[-1] for r in table.rows)


def test_single_runs_are_compared_directly(tmp_path):
    a = make_run(tmp_path, "a", model="openvla-oft", pruner="none", suite="libero_spatial",
                 tasks=suite_tasks(45, 50, 5))
    b = make_run(tmp_path, "b", model="openvla-oft", pruner="fastv", suite="libero_spatial",
                 retention=0.5, tasks=suite_tasks(45, 50, 5, latency_ms=60.0))
    table, failed = compare(str(a), str(b))
    assert not failed and len(table.rows) == 1


def test_nothing_matching_is_a_config_error(tmp_path):
    base = _results(tmp_path / "base", suites=("libero_spatial", "libero_goal"))
    new = tmp_path / "new"
    for suite in ("libero_10", "libero_object"):
        make_run(new, suite, model="openvla", pruner="none", suite=suite, tasks=suite_tasks(5, 10, 2))
    with pytest.raises(ConfigError, match="nothing to compare"):
        compare(str(base), str(new))


@pytest.mark.parametrize("status", ["interrupted", "running"])
def test_an_unfinished_run_is_never_passed(cli, tmp_path, status):
    base = _results(tmp_path / "base", suites=("libero_spatial",))
    make_run(tmp_path / "new", "fastv-libero_spatial", model="openvla-oft", pruner="fastv",
             suite="libero_spatial", retention=0.5, tasks=suite_tasks(45, 50, 5), status=status)
    res = cli("compare", str(base), str(tmp_path / "new"))
    assert res.returncode == 2 and "OK" not in res.stdout
    assert f"is not a finished run (status {status}, 50 episodes)" in res.stderr
