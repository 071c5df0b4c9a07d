"""suite.timing from the command line: bad input, fitted profiles, real LIBERO runs, the report."""

from __future__ import annotations

import pytest
from conftest import run_cli

from vlabench.metrics.latency_model import load_profile


def _one_error_nothing_written(res, out, needle):
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr and needle in lines[0], res.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args,needle", [
    (["suite.timing=later"], "valid: frozen, sync, async"),
    (["suite.timing=sync", "timing.latency=-5ms"], "valid: measured, a duration"),
    (["suite.timing=sync", "timing.latency=fast"], "valid: measured, a duration"),
    (["suite.timing=async", "timing.latency=profile:no-such-gpu"], "valid: openvla"),
    (["suite.timing=sync", "timing.hold=float"], "valid: zero, repeat"),
    (["suite.timing=async", "model.chunk=1"], "needs a policy that returns an action chunk"),
    (["suite=test-fast", "+suite.timing=sync"], "has no suite.control_hz"),
])
def test_bad_timing_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, needle):
    out = tmp_path / "results"
    res = run_cli("run", "model=test-zero", *args, f"run.output_dir={out}", "suite.tasks=[0]",
                  "run.episodes_per_task=1")
    _one_error_nothing_written(res, out, needle)


def test_a_malformed_profile_file_is_refused(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("a_ms: 3\nb_ms_per_tflop: many\nc_ms_per_tflop: 0\n")
    out = tmp_path / "results"
    res = run_cli("run", "model=test-zero", "suite.timing=sync", f"timing.latency=profile:{bad}",
                  f"run.output_dir={out}")
    _one_error_nothing_written(res, out, "b_ms_per_tflop must be a finite number")


def test_bench_fit_profile_writes_a_profile_that_a_run_reads_back(tmp_path):
    path = tmp_path / "cpu.yaml"
    res = run_cli("bench", "model=openvla-oft-tiny", "pruner=fastv", "pruner.retention=0.25",
                  "bench.calls=3", "--fit-profile", str(path))
    assert res.returncode == 0, res.stderr
    p = load_profile(str(path))
    assert p.meta["calls"] == 6 and p.meta["model"] == "openvla-oft-tiny"
    assert p.meta["fitted"][0] == "a_ms" and "b_ms_per_tflop" in p.meta["fitted"]
    res = run_cli("plan", "model=openvla-oft-tiny", "suite.timing=sync", f"timing.latency=profile:{path}",
                  f"run.output_dir={tmp_path / 'r'}")
    assert res.returncode == 0, res.stderr


def test_the_latency_aware_preset_runs_each_method_frozen_sync_and_async_under_the_4090_profile():
    from vlabench.launch import sweep

    jobs = sweep.jobs_for(sweep.split_request(["+experiment=latency-aware"]), False)[0]
    modes: dict[tuple, set] = {}
    for j in jobs:
        key = (str(j.cfg.pruner.name), str(j.cfg.suite.name))
        modes.setdefault(key, set()).add(str(j.cfg.suite.get("timing", "frozen")))
        if "timing" in j.cfg:
            assert j.cfg.timing.latency == "profile:openvla-oft-rtx4090"
    assert len(modes) == 20 and all(m == {"frozen", "sync", "async"} for m in modes.values())
