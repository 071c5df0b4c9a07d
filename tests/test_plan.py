"""`vlabench plan`: the runs, what exists, resumability and the hours left, from the records."""

from __future__ import annotations

import os

from conftest import run_cli

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.launch import sweep
from vlabench.launch.compose import compose
from vlabench.launch.plan import plan_text, read_timing
from vlabench.records import throughput
from vlabench.run.runner import run_from_config

FAST = ["model=test-zero", "suite=test-fast", "run.quiet=true"]


def write_csv(path, columns, rows):
    path.write_text(",".join(columns) + "\n"
                    + "".join(",".join(str(r.get(c, "")) for c in columns) + "\n" for r in rows))


def prior_run(out, name="prior", model="test-zero", pruner="none", suite="test-fast"):
    """An earlier run's records: 10 steps, 5 s of simulator (0.5 s/step); 4 calls of which
    one warm-up: mean warm latency 200 ms, 0.4 calls per step -> 0.08 s of policy per step."""
    d = out / name
    d.mkdir(parents=True)
    ident = {"model": model, "pruner": pruner, "suite": suite}
    write_csv(d / "episodes.csv", EPISODE_COLUMNS,
              [{**ident, "task_id": 0, "episode": 0, "steps": 4, "sim_s": 2.0},
               {**ident, "task_id": 0, "episode": 1, "steps": 6, "sim_s": 3.0}])
    write_csv(d / "calls.csv", CALL_COLUMNS,
              [{"warmup": 1, "lat_total_ms": 1000}, {"warmup": 0, "lat_total_ms": 100},
               {"warmup": 0, "lat_total_ms": 200}, {"warmup": 0, "lat_total_ms": 300}])


def plan(*args):
    req = sweep.split_request(list(args))
    return plan_text(sweep.jobs_for(req, True)[0]).splitlines()


def row(lines, name):
    return next(line.split() for line in lines if len(line.split()) > 1 and line.split()[1] == name)


def test_estimate_from_earlier_runs_hand_worked(tmp_path):
    prior_run(tmp_path)
    lines = plan(*FAST, f"run.output_dir={tmp_path}")
    # 2 tasks x 3 episodes to the step limit 4: 24 steps; 24 x 0.5 s = 12 s; 24 x 0.08 s = 1.92 s
    # one worker: wall = 12 + 1.92 s = 0.00387 h
    assert row(lines, "test-zero-none-test-fast")[-6:] == ["0/6", "new", "-", "0.00333", "0.000533", "0.00387"]
    assert "simulator 0.00333 h, policy 0.000533 h, wall 0.00387 h" in lines[-1]


def test_policy_time_from_another_pruner_is_marked(tmp_path):
    prior_run(tmp_path)
    lines = plan(*FAST, "pruner=random", f"run.output_dir={tmp_path}")
    assert row(lines, "test-zero-random-test-fast")[-2] == "0.000533*"
    assert lines[-1] == "* policy time from runs of the same model with another pruner"


def test_no_timing_data(tmp_path):
    lines = plan(*FAST, f"run.output_dir={tmp_path / 'empty'}")
    assert row(lines, "test-zero-none-test-fast")[-3:] == ["?", "?", "?"]
    assert lines[-1] == "no timing data: no recorded runs beside these (run.output_dir)"


def test_existing_runs_complete_partial_and_refused(tmp_path):
    run_from_config(compose([*FAST, f"run.output_dir={tmp_path}", "run.episodes_per_task=1"]))
    run_from_config(compose([*FAST, f"run.output_dir={tmp_path}", "run.name=fixed", "run.seed=1",
                             "run.episodes_per_task=1"]))
    lines = plan(*FAST, f"run.output_dir={tmp_path}", "run.episodes_per_task=1")
    assert row(lines, "test-zero-none-test-fast")[6:12] == ["2", "x", "1", "2/2", "complete", "yes"]
    assert row(lines, "test-zero-none-test-fast")[-3:] == ["0", "0", "0"]
    lines = plan(*FAST, f"run.output_dir={tmp_path}", "run.episodes_per_task=2")
    assert row(lines, "test-zero-none-test-fast")[9:12] == ["2/4", "partial", "yes"]
    lines = plan(*FAST, f"run.output_dir={tmp_path}", "run.name=fixed", "run.episodes_per_task=2")
    assert " no: holds a run with a different config (run.seed)" in next(
        line for line in lines if line.split()[1:2] == ["fixed"])
    lines = plan(*FAST, f"run.output_dir={tmp_path}", "run.name=fixed", "run.seed=1")   # null = 3: grows
    assert next(line for line in lines if line.split()[1:2] == ["fixed"]).split()[9:12] == \
        ["2/6", "partial", "yes"]


def record_throughput(out, calls_per_s, pruner="none", device="cpu"):
    throughput.save(out, {"model": "test-zero", "pruner": pruner, "device": device,
                          "throughput": [{"batch": b, "calls_per_s": c} for b, c in calls_per_s.items()]})


def test_batched_policy_time_from_a_throughput_record_hand_worked(tmp_path):
    prior_run(tmp_path)
    record_throughput(tmp_path, {1: 10.0, 2: 16.0, 4: 25.0})
    cores = len(os.sched_getaffinity(0))
    # 4 workers, batch 4: gain 25 / 10 = 2.5 -> policy 1.92 / 2.5 = 0.768 s; wall max(12 / min(4, cores), 0.768)
    lines = plan(*FAST, f"run.output_dir={tmp_path}", "run.env_workers=4", "run.batch=4")
    r = row(lines, "test-zero-none-test-fast")
    assert r[-2:] == ["0.000213t", f"{max(12 / min(4, cores), 0.768) / 3600:.3g}"]
    assert any(line.startswith("t: batched policy time") for line in lines)
    # batch 3 uses the largest recorded size <= 3 (2: gain 1.6); 2 workers cap the batch at 2
    assert row(plan(*FAST, f"run.output_dir={tmp_path}", "run.env_workers=4", "run.batch=3"),
               "test-zero-none-test-fast")[-2] == f"{1.92 / 1.6 / 3600:.3g}t"
    assert row(plan(*FAST, f"run.output_dir={tmp_path}", "run.env_workers=2", "run.batch=4"),
               "test-zero-none-test-fast")[-2] == f"{1.92 / 1.6 / 3600:.3g}t"
    # another device class's record does not count: batch-1 hours, an upper bound, said so
    lines = plan(*FAST, f"run.output_dir={tmp_path}", "run.env_workers=4", "run.batch=4", "run.device=cuda")
    assert row(lines, "test-zero-none-test-fast__device=cuda")[-2] == "0.000533"
    assert lines[-1] == ("run.batch > 1 without a throughput record: policy hours at batch 1 (an upper bound); on "
                         "the machine that will run them, `vlabench bench bench.throughput=true model=test-zero "
                         f"pruner=none run.output_dir={tmp_path}` records the gain")


def test_batched_calls_give_no_batch_1_latency(tmp_path):
    d = tmp_path / "batched"
    d.mkdir()
    write_csv(d / "episodes.csv", EPISODE_COLUMNS,
              [{"model": "m", "pruner": "p", "suite": "s", "task_id": 0, "episode": 0, "steps": 4, "sim_s": 2.0}])
    write_csv(d / "calls.csv", CALL_COLUMNS,
              [{"warmup": 0, "lat_total_ms": 100, "batch": 1}, {"warmup": 0, "lat_total_ms": 900, "batch": 2},
               {"warmup": 0, "lat_total_ms": 900, "batch": 2}])
    t = read_timing(d)
    assert (t.calls, t.warm, t.lat_ms) == (3, 1, 100.0)


def test_plan_command_runs_nothing(tmp_path):
    out = tmp_path / "out"
    res = run_cli("plan", *FAST, f"run.output_dir={out}", "run.seed=1,2")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].split()[:3] == ["#", "run", "model"]
    assert "2 run(s), 12 episodes planned, 12 left" in res.stdout
    assert not out.exists()
