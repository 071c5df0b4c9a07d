"""`vlabench compare`: the regression gate's verdicts and exit codes."""

from __future__ import annotations

import re
import shutil

import pytest
from report_helpers import TaskSpec, make_run, suite_tasks

from vlabench.core.errors import ConfigError
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


def test_single_runs_of_the_same_config_are_compared_directly(tmp_path):
    a = make_run(tmp_path / "base", "a", model="openvla-oft", pruner="fastv", suite="libero_spatial",
                 retention=0.5, tasks=suite_tasks(45, 50, 5))
    b = make_run(tmp_path / "new", "b", model="openvla-oft", pruner="fastv", suite="libero_spatial",
                 retention=0.5, tasks=suite_tasks(45, 50, 5, latency_ms=60.0))
    table, failed = compare(str(a), str(b))
    assert not failed and len(table.rows) == 1


DIFFERENT = [
    ({"pruner": "none"}, "differ in pruner ('fastv' vs 'none')"),
    ({"retention": 0.25}, "differ in pruner retention (0.5 vs 0.25)"),
    ({"model": "openvla"}, "differ in model ('openvla-oft' vs 'openvla')"),
    ({"suite": "libero_goal"}, "differ in suite ('libero_spatial' vs 'libero_goal')"),
    ({"pruner_cfg": {"layer": 3}}, "differ in pruner.layer (2 vs 3)"),
]


@pytest.mark.parametrize("change,message", DIFFERENT)
def test_runs_of_different_settings_are_refused_naming_the_difference(tmp_path, change, message):
    same = {"model": "openvla-oft", "pruner": "fastv", "suite": "libero_spatial", "retention": 0.5,
            "pruner_cfg": {"layer": 2}}
    a = make_run(tmp_path / "base", "a", tasks=suite_tasks(45, 50, 5), **same)
    b = make_run(tmp_path / "new", "b", tasks=suite_tasks(45, 50, 5), **{**same, **change})
    with pytest.raises(ConfigError, match=re.escape(message)):
        compare(str(a), str(b))


def test_compare_cli_refuses_none_against_specprune_in_one_line(cli, tmp_path):
    a = make_run(tmp_path / "base", "a", model="openvla-oft", pruner="none", suite="libero_spatial",
                 tasks=suite_tasks(45, 50, 5))
    b = make_run(tmp_path / "new", "b", model="openvla-oft", pruner="specprune", suite="libero_spatial",
                 tasks=suite_tasks(45, 50, 5, latency_ms=160.0))
    res = cli("compare", str(a), str(b))
    assert res.returncode == 2 and "REGRESSION" not in res.stdout
    assert len(res.stderr.strip().splitlines()) == 1 and "differ in pruner" in res.stderr


def _set_machine(run_dir, machine):
    import json

    m = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**m, "machine": machine}))


A100 = {"cpu": "AMD EPYC 7763", "cpu_cores": 64, "system": "Linux",
        "gpu": {"name": "NVIDIA A100-SXM4-80GB", "driver": "535.104.05", "cuda": "12.1", "cudnn": "8902"}}
H100 = {**A100, "gpu": {**A100["gpu"], "name": "NVIDIA H100 80GB HBM3"}}


def test_compare_warns_in_one_line_when_machines_differ_without_failing(cli, tmp_path):
    base = _results(tmp_path / "base")
    new = _results(tmp_path / "new")
    for d in base.iterdir():
        _set_machine(d, A100)
    for d in new.iterdir():
        _set_machine(d, H100)
    res = cli("compare", str(base), str(new))
    assert res.returncode == 0, res.stdout + res.stderr
    warn = [line for line in res.stderr.splitlines() if "warning" in line]
    assert len(warn) == 1 and "NVIDIA A100-SXM4-80GB" in warn[0] and "NVIDIA H100 80GB HBM3" in warn[0]


def test_compare_is_silent_when_machines_match(tmp_path, capsys):
    base = _results(tmp_path / "base", suites=("libero_spatial",))
    new = _results(tmp_path / "new", suites=("libero_spatial",))
    for d in list(base.iterdir()) + list(new.iterdir()):
        _set_machine(d, A100)
    compare(str(base), str(new))
    assert "warning" not in capsys.readouterr().err


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
