"""hydra/launcher=submitit_local: runs go through Hydra's submitit launcher plugin as real
subprocess jobs (the path SLURM's submitit_slurm takes, bar sbatch), with the same records as a
run in this process; a failing run is named and the exit code is 1."""

from __future__ import annotations

import os

import pytest
from conftest import TEST_PLUGINS
from test_merge import BASE, results, run

from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.launch.jobs import Job
from vlabench.launch.launchers import hydra_launcher, launch


def job(*overrides: str) -> Job:
    ov = tuple(BASE + list(overrides))
    return Job(ov, compose(list(ov)))


def test_submitit_jobs_write_the_same_runs_and_a_failed_job_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TEST_PLUGINS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)
    run(tmp_path / "ref", "run.name=a")
    (tmp_path / "out" / "taken").mkdir(parents=True)
    (tmp_path / "out" / "taken" / "notes.txt").write_text("not a run")
    jobs = [job("run.output_dir=out", "run.name=a"), job("run.output_dir=out", "run.name=taken")]
    rc = launch(jobs, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"])
    captured = capsys.readouterr()
    assert rc == 1
    assert results(tmp_path / "out" / "a") == results(tmp_path / "ref" / "a")
    assert "taken failed: ConfigError" in captured.err and "not a vlabench run directory" in captured.err
    assert (tmp_path / "out" / "taken" / "notes.txt").read_text() == "not a run"
    sweeps = list((tmp_path / "out" / ".submitit").iterdir())
    assert len(sweeps) == 1 and (sweeps[0] / ".submitit").is_dir()   # submitit's logs live here


def test_the_launcher_choice_is_read_from_the_hydra_overrides(tmp_path):
    assert hydra_launcher(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu"]) == "submitit_slurm"
    assert hydra_launcher(["hydra.launcher.partition=gpu"]) is None
    with pytest.raises(ConfigError, match="valid: submitit_slurm, submitit_local"):
        launch([job(f"run.output_dir={tmp_path}")], ["hydra/launcher=joblib"])
    with pytest.raises(ConfigError, match="pick one"):
        launch([job(f"run.output_dir={tmp_path}", "run.launcher=ray")], ["hydra/launcher=submitit_slurm"])
    assert not any(tmp_path.iterdir())


def test_a_bad_launcher_parameter_is_one_line_before_anything_is_submitted(tmp_path):
    with pytest.raises(ConfigError, match="bad launcher override") as e:
        launch([job(f"run.output_dir={tmp_path}")], ["hydra/launcher=submitit_local",
                                                     "hydra.launcher.no_such_key=1"])
    assert "\n" not in str(e.value) and not any(tmp_path.iterdir())


def test_submitit_slurm_without_slurm_is_one_line_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))   # no srun/sbatch on it
    with pytest.raises(ConfigError, match="SlurmLauncher could not submit the jobs: .*slurm") as e:
        launch([job(f"run.output_dir={tmp_path / 'out'}")], ["hydra/launcher=submitit_slurm",
                                                             "hydra.launcher.partition=gpu"])
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
