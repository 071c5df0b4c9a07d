"""Sweeps (`vlabench run -m`): Hydra's grammar, every job checked before any runs, one run
directory per distinct config, and the default run name that makes that so."""

from __future__ import annotations

import pytest
from conftest import run_cli

from vlabench.core.errors import ConfigError
from vlabench.launch import sweep
from vlabench.launch.compose import UnknownKey, compose
from vlabench.records import naming

FAST = ["model=test-zero", "suite=test-fast", "run.quiet=true"]
TINY = ["model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]", "run.episodes_per_task=1",
        "run.max_steps=8"]


def jobs(*args: str, multirun: bool = True):
    return sweep.jobs_for(sweep.split_request(list(args)), multirun)


def one_line_error(res, *words):
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vlabench: error: "), res.stderr
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


# ---------------------------------------------------------------- default run names

def test_default_name_is_unchanged_when_nothing_episode_defining_differs():
    cfg = compose([*FAST, "run.episodes_per_task=2", "suite.tasks=[1]", "run.env_workers=2",
                   "run.overwrite=true", "bench.calls=3"])
    assert cfg.run.name == "test-zero-none-test-fast"


def test_default_name_appends_the_differing_settings_sorted_and_shortened():
    cfg = compose(["pruner=fastv", "pruner.retention=0.25", "run.max_steps=8", "run.seed=3"])
    # run.max_steps and run.seed keep their group (suite.max_steps and model.seed exist)
    assert cfg.run.name == "openvla-oft-tiny-fastv-libero_spatial__retention=0.25,run.max_steps=8,run.seed=3"


def test_a_plugins_own_defaults_are_not_differences():
    assert compose(["pruner=vla-pruner-25"]).run.name == "openvla-oft-tiny-vla-pruner-25-libero_spatial"
    assert compose(["pruner=fastv", "pruner.retention=0.5"]).run.name == \
        "openvla-oft-tiny-fastv-libero_spatial"


def test_shard_suffix_and_unshard():
    cfg = compose([*FAST, "run.shard=2/3", "suite.success_every=3"])
    assert cfg.run.name == "test-zero-none-test-fast__success_every=3.shard-2-of-3"
    assert naming.unshard(cfg.run.name) == "test-zero-none-test-fast__success_every=3"


def test_unsafe_or_long_values_get_a_hash_and_stay_distinct():
    a = compose([*FAST, "+suite.note='a b'"]).run.name
    b = compose([*FAST, "+suite.note='a_b'"]).run.name
    assert a.startswith("test-zero-none-test-fast__note=a_b~") and b == "test-zero-none-test-fast__note=a_b"
    long = compose([*FAST, f"+suite.note={'x' * 400}"]).run.name
    assert len(long) == naming.MAX_CHARS and "~" in long


def test_explicit_run_name_wins():
    assert compose([*FAST, "run.seed=3", "run.name=mine"]).run.name == "mine"


def test_sweep_and_hand_typed_run_get_the_same_name():
    (job,), _ = jobs("pruner=fastv", "pruner.retention=0.25", "run.max_steps=8")
    swept, _ = jobs("pruner=fastv", "pruner.retention=0.5,0.25", "run.max_steps=8")
    assert job.name == swept[1].name == compose(["pruner=fastv", "pruner.retention=0.25",
                                                 "run.max_steps=8"]).run.name


# ---------------------------------------------------------------- expansion

def test_cross_product_range_and_glob():
    js, notes = jobs(*FAST, "run.seed=range(1,4)", "suite.success_every=2,3")
    assert [(j.cfg.run.seed, j.cfg.suite.success_every) for j in js] == \
        [(1, 2), (1, 3), (2, 2), (2, 3), (3, 2), (3, 3)] and notes == []
    assert len({j.run_dir for j in js}) == 6
    js, _ = jobs("suite=glob(libero_1*)")
    assert [j.cfg.suite.name for j in js] == ["libero_10"]


def test_acceptance_sweep_drops_retention_for_none_and_runs_it_once():
    js, notes = jobs("pruner=none,fastv", "pruner.retention=0.5,0.25", *TINY)
    assert [(j.cfg.pruner.name, j.cfg.pruner.get("retention")) for j in js] == \
        [("none", None), ("fastv", 0.5), ("fastv", 0.25)]
    assert notes == ["note: pruner.retention dropped from 2 job(s) whose config has no such "
                     "setting; 1 identical job(s) removed, each config runs once"]
    assert "pruner.retention=0.5" not in js[0].overrides


def test_a_key_valid_for_no_job_is_the_unknown_key_error():
    with pytest.raises(UnknownKey, match=r"unknown setting pruner.retention for pruner=none"):
        jobs("pruner=none", "pruner.retention=0.5,0.25")
    with pytest.raises(UnknownKey, match=r"did you mean run.episodes_per_task\?"):
        jobs(*FAST, "run.seed=1,2", "run.episodes=3")


def test_two_jobs_into_one_directory_are_refused():
    with pytest.raises(ConfigError, match=r"jobs 1 .* and 2 .* would both write to .*/same"):
        jobs(*FAST, "run.name=same", "run.seed=1,2")
    with pytest.raises(ConfigError, match="would both write"):   # a neutral key: one directory
        jobs(*FAST, "run.env_workers=1,2")


def test_hydra_overrides_are_launcher_settings():
    req = sweep.split_request(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=x",
                               "+experiment=nightly", "run.seed=1"])
    assert req.hydra == ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=x"]
    assert req.experiment == "nightly" and req.overrides == ["run.seed=1"]
    with pytest.raises(ConfigError, match="applies with -m"):
        jobs(*FAST, "hydra/launcher=submitit_slurm", multirun=False)


def test_cfg_job_lists_every_job_and_shows_no_experiment_node():
    js, _ = jobs("+experiment=nightly", "model=openvla-oft-tiny", multirun=False)
    text = sweep.cfg_text(js, "job", [])
    assert [line for line in text.splitlines() if line.startswith("# job ")] == [
        f"# job {i}/3: pruner={p} suite=libero_spatial run.episodes_per_task=5 model=openvla-oft-tiny"
        for i, p in enumerate(["none", "vla-pruner-25", "specprune"], 1)]
    assert "experiment" not in text


# ---------------------------------------------------------------- the command line

def test_comma_list_without_m_is_one_line(tmp_path):
    res = run_cli("run", *FAST, f"run.output_dir={tmp_path / 'out'}", "run.seed=1,2")
    one_line_error(res, "run.seed=1,2 is a sweep; use -m")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad, words", [
    (["run.episodes=3"], ["unknown setting run.episodes (did you mean run.episodes_per_task?)"]),
    (["run.max_steps=4,0"], ["run.max_steps must be a positive integer"]),
    (["run.name=x"], ["would both write"]),
])
def test_a_bad_sweep_writes_nothing(tmp_path, bad, words):
    res = run_cli("run", "-m", *FAST, f"run.output_dir={tmp_path / 'out'}", "run.seed=1,2", *bad)
    one_line_error(res, *words)
    assert not (tmp_path / "out").exists()


def test_sweep_runs_every_job_into_its_own_directory(tmp_path):
    out = tmp_path / "out"
    res = run_cli("run", "-m", *FAST, f"run.output_dir={out}", "run.episodes_per_task=1",
                  "run.seed=1,2", "suite.success_every=2,3")
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[0] == "sweep: 4 runs (launcher: local)"
    names = sorted(p.name for p in out.iterdir())
    # success_every=2 is test-fast's default; bench.seed exists, so run.seed keeps its group
    assert names == ["test-zero-none-test-fast__run.seed=1", "test-zero-none-test-fast__run.seed=1,success_every=3",
                     "test-zero-none-test-fast__run.seed=2", "test-zero-none-test-fast__run.seed=2,success_every=3"]
    assert all((out / n / "episodes.csv").read_text().count("\n") == 3 for n in names)


def test_cfg_and_info_run_nothing(tmp_path):
    out = tmp_path / "out"
    res = run_cli("run", "-m", *FAST, f"run.output_dir={out}", "run.seed=1,2", "--cfg", "job")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("# job ") == 2 and "seed: 2" in res.stdout
    res = run_cli("run", "-m", *FAST, f"run.output_dir={out}", "run.seed=1,2", "--info")
    assert res.returncode == 0, res.stderr
    for words in ("Config search path:", "suite: ", "test-fast", "+experiment: ", "Jobs (2):",
                  "defaults list: model=test-zero, pruner=none, suite=test-fast, _self_"):
        assert words in res.stdout, res.stdout
    assert not out.exists()


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("vlabench ")


def test_sweep_hands_jobs_and_launcher_overrides_to_the_launchers(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vlabench.launch.launchers
    from vlabench.commands.cli import app

    seen = []
    monkeypatch.setattr(vlabench.launch.launchers, "launch", lambda jobs, hydra: seen.append((jobs, hydra)) or 0)
    res = CliRunner().invoke(app, ["run", "-m", *FAST, f"run.output_dir={tmp_path}", "run.seed=1,2",
                                   "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"])
    assert res.exit_code == 0, res.output
    (jobs_, hydra), = seen
    assert [j.cfg.run.seed for j in jobs_] == [1, 2]
    assert hydra == ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"]
    assert "sweep: 2 runs (launcher: submitit_local)" in res.output and not any(tmp_path.iterdir())
