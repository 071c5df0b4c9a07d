"""run.logger: per-episode and summary metrics with the config, written by the real tensorboard
writer (read back from its event file) and by wandb in offline mode; a missing package is one
line naming the pip install; a tracker that fails mid-run is dropped, the run goes on; nothing
is imported when run.logger=none."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, vlabench_cmd

from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.run import loggers
from vlabench.run.runner import run_from_config


def run(out: Path, *extra: str) -> Path:
    run_from_config(compose(["model=test-zero", "suite=test-fast", f"run.output_dir={out}",
                             "run.name=r", "run.quiet=true", *extra]))
    return out / "r"


def committed(d: Path) -> list[dict[str, str]]:
    with open(d / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_episode_metrics_are_hand_worked():
    row = {"task_id": 1, "success": True, "steps": 12, "policy_calls": 4, "model_calls": 3,
           "wall_s": 0.5, "error_type": ""}
    calls = [{"source": "model", "warmup": False, "lat_total_ms": 10.0, "tokens_kept": 64},
             {"source": "model", "warmup": False, "lat_total_ms": 20.0, "tokens_kept": 128},
             {"source": "model", "warmup": True, "lat_total_ms": 900.0, "tokens_kept": 256},
             {"source": "extrapolator", "warmup": False, "lat_total_ms": 1.0, "tokens_kept": None}]
    assert loggers.episode_metrics(row, calls) == {
        "success": 1.0, "steps": 12.0, "policy_calls": 4.0, "model_calls": 3.0, "wall_s": 0.5,
        "latency_mean_ms": 15.0, "tokens_kept_mean": 96.0, "error": 0.0}


def test_tensorboard_receives_every_episode_the_summary_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    d = run(tmp_path, "run.logger=tensorboard")
    acc = EventAccumulator(str(d / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    eps = committed(d)
    success = acc.Scalars("episode/success")
    assert [e.step for e in success] == list(range(1, len(eps) + 1))
    assert [e.value for e in success] == [float(r["success"] == "1") for r in eps]
    assert [e.value for e in acc.Scalars("episode/steps")] == [float(r["steps"]) for r in eps]
    assert acc.Scalars("summary/success_rate")[0].value == pytest.approx(4 / 6)
    tags = acc.Tags()["tensors"]   # add_text is stored as a tensor summary
    assert any(t.startswith("config") for t in tags)


def test_wandb_offline_run_holds_the_episode_and_summary_metrics(tmp_path):
    pytest.importorskip("wandb")
    (tmp_path / "wb").mkdir()
    env = {**cli_env(), "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb"), "WANDB_SILENT": "true"}
    # its own process, as a user runs it: wandb's writer may finish the file after finish() returns
    res = subprocess.run(vlabench_cmd("run", "model=test-zero", "suite=test-fast", "run.quiet=true",
                                      f"run.output_dir={tmp_path / 'runs'}", "run.logger=wandb"),
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    files = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    data = files[0].read_bytes()   # the keys travel as plain strings in wandb's record log
    for key in (b"episode/success", b"episode/tokens_kept_mean", b"summary/success_rate",
                b"test-fast", b"episodes_per_task"):
        assert key in data


def test_a_missing_tracker_package_is_one_line_naming_the_pip_install(monkeypatch):
    monkeypatch.setattr(loggers, "_has", lambda m: False)
    with pytest.raises(ConfigError, match=r"^run.logger=wandb needs the wandb package: pip install wandb$"):
        compose(["model=test-zero", "suite=test-fast", "run.logger=wandb"])
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        compose(["model=test-zero", "suite=test-fast", "run.logger=tensorboard"])
    with pytest.raises(ConfigError, match="run.logger='mlflow' is invalid; valid: none, wandb, tensorboard"):
        compose(["model=test-zero", "suite=test-fast", "run.logger=mlflow"])


def test_a_tracker_that_fails_mid_run_is_dropped_and_the_run_goes_on(capsys):
    class Flaky(loggers.Tracker):
        def __init__(self):
            self.got = []

        def episode(self, index, task_id, metrics):
            self.got.append(index)
            if index == 2:
                raise ConnectionError("tracker unreachable")

        def finish(self, summary, status):
            raise AssertionError("not called after the failure")

    t = Flaky()
    lg = loggers.RunLogger(t, start_index=0)
    row = {"task_id": 0, "success": False, "steps": 3}
    for _ in range(4):
        lg.episode(row, [])
    lg.finish(None, "complete")
    assert t.got == [1, 2] and lg.tracker is None
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vlabench: run.logger stopped (episode: ConnectionError: tracker unreachable)"]


def test_no_tracker_is_imported_without_run_logger(tmp_path):
    code = ("import sys; from vlabench.launch.compose import compose; from vlabench.run.runner import run_from_config;"
            f"run_from_config(compose(['model=test-zero', 'suite=test-fast', 'run.output_dir={tmp_path}',"
            " 'run.quiet=true']));"
            "print(sorted(m for m in ('wandb', 'tensorboard', 'tensorboardX', 'torch.utils.tensorboard')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_with_environment_workers_the_main_process_logs_every_committed_episode(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    d = run(tmp_path, "run.logger=tensorboard", "run.env_workers=2")
    acc = EventAccumulator(str(d / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    eps = committed(d)   # commit order: the order the tracker saw them
    assert [e.value for e in acc.Scalars("episode/task_id")] == [float(r["task_id"]) for r in eps]
    assert [e.value for e in acc.Scalars("episode/success")] == [float(r["success"] == "1") for r in eps]
