"""run.record_obs, `vlabench bench --replay` and the report's latency source (issue 22 item 4).

A run records what its policy saw (one episode per task: the first K `act` observations and the
open-loop steps between them that reach `observe`); the replay runs them through the run's model
and pruner and a pruner=none fork at batch 1, interleaved; the report takes latency, Hz and
speedup from the replay (labelled), shows n/a for a batched run without one, and flags a speedup
above its FLOPs bound or measured across machines.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from golden_runs import Task, load, write_run

from vlabench.core.contracts import EpisodeSpec, Observation, PolicyOutput, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.records import observations as store
from vlabench.records.files import atomic_write_text, format_rows, sha256
from vlabench.report.runstable import runs_table
from vlabench.run.obs_recorder import RecordingPolicy, install


# ---------------------------------------------------------------- the recorder
class _Inner:
    needs = frozenset({"agentview"})
    observes_steps = True

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.device = "cpu"

    def reset(self, task):
        self.calls.append(("reset", task.id))

    def act(self, obs):
        self.calls.append(("act", obs.step))
        return PolicyOutput(np.zeros((2, 7)))

    def observe(self, obs):
        self.calls.append(("observe", obs.step))

    def fork(self, pruner):
        return _Inner()


def _obs(step: int) -> Observation:
    img = np.full((8, 8, 3), step, dtype=np.uint8)
    return Observation("do it", step, images={"agentview": img}, proprio={"eef_pos": np.arange(3.0) + step})


class _Runner:
    def __init__(self):
        self.policy = _Inner()

    def run_episode(self, env, task, ep):   # the loop's order: act, then observe open-loop steps
        self.policy.reset(task)
        for step in range(env):
            (self.policy.act if step % 2 == 0 else self.policy.observe)(_obs(step))
        return step


def test_recorder_keeps_the_first_k_calls_and_the_steps_between_in_order(tmp_path):
    runner = _Runner()
    plan = {"k": 2, "episodes": {"0": 1, "3": 0}}
    rec = install(runner, tmp_path, plan)
    task0, task3 = TaskInfo(0, "t0", "do it"), TaskInfo(3, "t3", "do it")
    runner.run_episode(9, task0, EpisodeSpec(0, 0, 0, 7))      # not a target
    runner.run_episode(9, task0, EpisodeSpec(0, 1, 1, 8))      # recorded: acts 0, 2; observe 1
    runner.run_episode(1, task3, EpisodeSpec(3, 0, 0, 9))      # shorter than K: written at its end
    assert sorted(p.name for p in (tmp_path / "obs").iterdir()) == ["task0_ep1.npz", "task3_ep0.npz"]
    got = store.load(tmp_path / "obs" / "task0_ep1.npz")
    assert [(k, o.step) for k, o in got.items] == [("act", 0), ("observe", 1), ("act", 2)]
    assert got.task == task0 and got.episode == EpisodeSpec(0, 1, 1, 8) and got.k == 2
    assert np.array_equal(got.items[1][1].images["agentview"], _obs(1).images["agentview"])
    assert np.array_equal(got.items[2][1].proprio["eef_pos"], np.arange(3.0) + 2)
    assert [(k, o.step) for k, o in store.load(tmp_path / "obs" / "task3_ep0.npz").items] == [("act", 0)]
    # everything reached the wrapped policy, recorded or not
    assert runner.policy._inner.calls.count(("act", 0)) == 3
    assert rec.needs == frozenset({"agentview"}) and rec.device == "cpu"
    assert isinstance(rec.fork(None), RecordingPolicy) and not rec.fork(None)._targets


def test_recorder_skips_an_interrupted_episode_and_steps_a_policy_ignores(tmp_path):
    runner = _Runner()
    loop = runner.run_episode

    def run_episode(env, task, ep):
        if env == "interrupted":   # Ctrl-C after one call: the episode is re-run later
            runner.policy.act(_obs(0))
            raise KeyboardInterrupt
        return loop(env, task, ep)

    runner.run_episode = run_episode
    install(runner, tmp_path, {"k": 5, "episodes": {"0": 0}})
    task, ep = TaskInfo(0, "t", "x"), EpisodeSpec(0, 0, 0, 7)
    with pytest.raises(KeyboardInterrupt):
        runner.run_episode("interrupted", task, ep)
    assert not (tmp_path / "obs").exists()
    runner.policy._inner.observes_steps = False   # observe does nothing: nothing to replay there
    runner.run_episode(5, task, ep)
    assert [k for k, _ in store.load(tmp_path / "obs" / "task0_ep0.npz").items] == ["act"] * 3


def test_a_resumed_run_keeps_its_recordings_and_records_the_other_tasks(tmp_path):
    plan = store.recording_plan(4, {0: "task0_ep0.npz"}, {0: [3, 4], 1: [2, 1], 2: []})
    assert plan == {"k": 4, "episodes": {"1": 1}, "kept": [0]}
    assert store.plan_targets(plan) == (4, {1: 1}) and store.plan_targets(None) == (0, {})


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "true"])
def test_record_obs_must_be_a_non_negative_integer(value):
    from vlabench.launch.compose import compose

    with pytest.raises(ConfigError, match="run.record_obs"):
        compose([f"run.record_obs={value}"])
    assert compose(["run.record_obs=3"]).run.record_obs == 3


# ---------------------------------------------------------------- the report
def _replay(run_dir, method_ms, base_ms, flops_llm=(0.5e12, 1e12), pruner="fastv", device="cuda:0 (GPU X)"):
    rows = []
    for i, (m, b) in enumerate(zip(method_ms, base_ms, strict=True)):
        for who, lat, llm in (("method", m, flops_llm[0]), ("baseline", b, flops_llm[1])):
            rows.append({"task_id": 0, "episode": 0, "item": i, "call": i, "kind": "act", "step": 8 * i,
                         "policy": who, "source": "model", "lat_total_ms": lat, "cuda_ms": lat - 1,
                         "mem_peak_mb": 2048.0, "flops_vision": 0.2e12, "flops_llm": llm})
    cols = ["task_id", "episode", "item", "call", "kind", "step", "policy", "source", "lat_total_ms",
            "cuda_ms", "mem_peak_mb", "flops_vision", "flops_llm"]
    text = format_rows(cols, rows, header=True)
    atomic_write_text(run_dir / "replay.csv", text)
    info = {"model": "openvla-oft", "pruner_config": pruner, "device_name": device,
            "csv_sha256": sha256(text.encode())}
    atomic_write_text(run_dir / "replay.json", json.dumps(info))


def _two_runs(tmp_path, method_extra=None, flops=0.849e12):
    write_run(tmp_path, "none", model="openvla-oft", pruner="none", suite="libero_goal",
              tasks=[Task("t", 8, 10, model_calls=4, latency_ms=100.0)])
    return write_run(tmp_path, "fastv", model="openvla-oft", pruner="fastv", suite="libero_goal",
                     retention=0.5, tasks=[Task("t", 7, 10, model_calls=4, latency_ms=20.0, flops=flops,
                                                extra=method_extra or {})])


def _row(t, method):
    i = next(i for i, r in enumerate(t.rows) if r[1].startswith(method))
    return dict(zip(t.header, t.rows[i], strict=True)), t.marks[i]


def test_latency_hz_and_speedup_come_from_the_replay_and_say_so(tmp_path):
    d = _two_runs(tmp_path)
    _replay(d, [60.0, 62.0, 58.0, 60.0], [100.0, 98.0, 102.0, 100.0])
    row, marks = _row(runs_table(load(tmp_path)), "FastV")
    assert row["SR % [95% CI]"].startswith("70.0")                       # success: the run's
    assert row["Latency mean / p50 / p95 (ms)"].startswith("60.0 / 60.0")  # latency: the replay's
    assert row["Speedup [95% CI]"].startswith("1.67×")                   # 400 / 240 on the same calls
    assert row["Hz"] == "16.67" and row["CUDA time (ms)"] == "59.00" and row["Peak memory (GB)"] == "2.000"
    assert any("replay on cuda:0 (GPU X)" in n and "4 recorded calls at batch 1" in n for n in marks)
    assert not any("exceeds" in n for n in marks)          # 1.67x within the 2x bound of the llm stage


def test_a_speedup_above_its_flops_bound_is_flagged(tmp_path):
    d = _two_runs(tmp_path)
    _replay(d, [20.0] * 4, [100.0] * 4)     # 5x with half the LLM FLOPs: at most 2x
    row, marks = _row(runs_table(load(tmp_path)), "FastV")
    assert row["Speedup [95% CI]"].startswith("5.00×")
    assert any("exceeds what its FLOPs allow (2.00×" in n and "stages it changes" in n for n in marks)


def test_runs_compared_across_time_or_machines_are_flagged(tmp_path):
    d = _two_runs(tmp_path)      # no replay: run vs run, 5x at 84.9% FLOPs (the case)
    for name, gpu in (("none", "NVIDIA H100"), ("fastv", "NVIDIA A100")):
        p = tmp_path / name / "manifest.json"
        man = json.loads(p.read_text())
        man["machine"] = {"cpu": "x", "cpu_cores": 8, "gpu": {"name": gpu}}
        p.write_text(json.dumps(man))
    row, marks = _row(runs_table(load(tmp_path)), "FastV")
    assert row["Speedup [95% CI]"].startswith("5.00×")
    assert any("exceeds what its FLOPs allow (1.18×" in n and "total FLOPs" in n for n in marks)
    assert any("compares two machines" in n and "A100" in n and "H100" in n for n in marks)
    assert d.exists()


def test_a_batched_run_shows_latency_only_from_a_replay(tmp_path):
    d = _two_runs(tmp_path, method_extra={"batch": 2})
    row, marks = _row(runs_table(load(tmp_path)), "FastV")
    assert row["Latency mean / p50 / p95 (ms)"].startswith("n/a") and row["Speedup [95% CI]"].startswith("n/a")
    assert any(f"latency n/a (batched run: `vlabench bench --replay {d}`)" in n for n in marks)
    _replay(d, [50.0] * 4, [100.0] * 4)
    row, marks = _row(runs_table(load(tmp_path)), "FastV")
    assert row["Latency mean / p50 / p95 (ms)"].startswith("50.0") and row["Speedup [95% CI]"].startswith("2.00×")
    assert not any("batched run" in n for n in marks)


def test_replay_without_recordings_says_how_to_record(tmp_path, cli):
    d = _two_runs(tmp_path)
    r = cli("bench", "--replay", str(d))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "no recorded observations" in r.stderr and "run.record_obs=" in r.stderr
    r = cli("bench", "--replay", str(d), "model=openvla")
    assert r.returncode == 2 and "takes only run.device" in r.stderr
    assert not (d / "replay.json").exists()


# ---------------------------------------------------------------- real runs (LIBERO, tiny OFT)
def _lat_cell(report: str) -> str:
    line = next(ln for ln in report.splitlines() if ln.startswith("| openvla-oft-tiny | FastV"))
    return line.split("|")[8].strip()


@pytest.mark.libero
@pytest.mark.slow
def test_acceptance_run_replay_report(tmp_path, cli):
    args = ["model=openvla-oft-tiny", "pruner=fastv", "suite=libero_spatial", "suite.tasks=[0,1]",
            "run.episodes_per_task=2", "run.max_steps=16", "run.env_workers=2", "run.batch=2", "run.batch_wait_ms=60000",
            "run.record_obs=4", "run.quiet=true", f"run.output_dir={tmp_path}", "run.name=acc"]
    r = cli("run", *args)
    assert r.returncode == 0, r.stderr[-2000:]
    d = tmp_path / "acc"
    assert sorted(p.name for p in (d / "obs").iterdir()) == ["task0_ep0.npz", "task1_ep0.npz"]
    assert json.loads((d / "manifest.json").read_text())["record_obs"]["episodes"] == {"0": 0, "1": 0}
    r = cli("bench", "--replay", str(d))
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((d / "replay.json").read_text())
    assert info["selections"]["equal_to_run"] == info["selections"]["calls_compared"] == 4
    rows = pd.read_csv(d / "replay.csv")
    method = rows[(rows.kind == "act") & (rows.policy == "method")]
    r = cli("report", str(d))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| 4 | " in r.stdout                     # episodes and success from the run
    mean = float(_lat_cell(r.stdout).split(" / ")[0])
    assert mean == pytest.approx(method.lat_total_ms.mean(), abs=0.05)   # latency from the replay
    assert re.search(r"latency, Hz and speedup from a replay on cpu \(4 recorded calls at batch 1", r.stdout)
    r = cli("run", *args)                          # a resume records nothing twice
    assert r.returncode == 0 and len(list((d / "obs").iterdir())) == 2


@pytest.mark.libero
@pytest.mark.slow
def test_specprune_replay_sees_the_run_token_selections(tmp_path, cli):
    """SpecPrune reads past frames (observe) and its controller: equal tokens kept per call prove
    the recorded sequence complete, in the env worker's RemotePolicy path."""
    r = cli("run", "model=openvla-oft-tiny", "pruner=specprune", "suite=libero_spatial", "suite.tasks=[0]",
            "run.episodes_per_task=2", "run.max_steps=32", "run.env_workers=2", "run.batch=2", "run.batch_wait_ms=60000",
            "run.record_obs=4", "run.quiet=true", f"run.output_dir={tmp_path}", "run.name=sp")
    assert r.returncode == 0, r.stderr[-2000:]
    d = tmp_path / "sp"
    rec = store.load(d / "obs" / "task0_ep0.npz")
    assert [k for k, _ in rec.items] == (["act"] + ["observe"] * 7) * 3 + ["act"]
    r = cli("bench", "--replay", str(d))
    assert r.returncode == 0, r.stderr[-2000:]
    calls = pd.read_csv(d / "calls.csv")
    calls = calls[(calls.task_id == 0) & (calls.episode == 0)].sort_values("call")
    rows = pd.read_csv(d / "replay.csv")
    method = rows[(rows.kind == "act") & (rows.policy == "method")].sort_values("call")
    assert list(method.tokens_kept) == list(calls.tokens_kept[:4])
    assert len(set(calls.tokens_kept[:4])) > 1            # the selections vary: the test can fail
    assert (rows[(rows.kind == "act") & (rows.policy == "baseline")].tokens_kept == 512).all()
