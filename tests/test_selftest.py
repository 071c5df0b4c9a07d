"""`vlabench selftest`: the oracle proves the install, and a cut step limit fails loudly."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, run_cli

SUITES = ("libero_object", "libero_spatial", "libero_goal", "libero_10")


@pytest.mark.parametrize("suite", SUITES)
def test_every_selftest_section_names_a_sample_a_minimum_and_reasons(suite):
    sec = yaml.safe_load((ROOT / f"configs/suite/{suite}.yaml").read_text())["selftest"]
    assert int(sec["episodes_per_task"]) >= 1 and 0 < float(sec["min_success"]) <= 1
    assert all(isinstance(k, int) and len(str(why)) > 20 for k, why in (sec["exclude"] or {}).items())


def test_selftest_refuses_a_suite_without_a_sample():
    res = run_cli("selftest", "suite=libero_90")
    assert res.returncode == 2
    assert "no selftest section" in res.stderr and "libero_object" in res.stderr


def test_selftest_refuses_to_swap_the_model():
    res = run_cli("selftest", "model=test-zero")
    assert res.returncode == 2 and "selftest fixes model" in res.stderr


@pytest.mark.libero
def test_selftest_passes_on_a_small_sample_and_prints_simulator_versions():
    res = run_cli("selftest", "suite=libero_object", "selftest.tasks=[0,6]", "selftest.episodes_per_task=1")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "mujoco 3.3.7" in res.stdout and "robosuite 1.4.0" in res.stdout and "libero 0.1.1" in res.stdout
    assert "libero_object: 2/2 = 100% (minimum 95%)  PASS" in res.stdout
    assert "selftest PASSED" in res.stdout


@pytest.mark.libero
@pytest.mark.parametrize("cut", ["run.max_steps=40", "suite.max_steps=40"])
def test_selftest_fails_with_a_clear_message_when_the_step_limit_is_cut(cut):
    res = run_cli("selftest", "suite=libero_object", "selftest.tasks=[0]", "selftest.episodes_per_task=1", cut)
    assert res.returncode == 1
    assert "selftest FAILED: libero_object 0% < 95%" in res.stdout
    assert "ran out of steps at the step limit of 40, below the protocol's 280" in res.stdout
    assert "the step limit is below what the tasks need" in res.stdout


def test_selftest_leaves_no_temporary_directory_after_an_interrupt_or_with_its_own_output_dir(
        tmp_path, monkeypatch):
    import tempfile

    import vlabench.commands.selftest as st

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(st, "run_suite", interrupted)
    with pytest.raises(KeyboardInterrupt):
        st.selftest([])
    assert list(scratch.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        st.selftest([f"run.output_dir={tmp_path / 'mine'}"])
    assert list(scratch.iterdir()) == []
