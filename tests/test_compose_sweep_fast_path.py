"""A sweep composes each plugin combination with Hydra once and applies plain `key=value`
settings to a copy (vlabench.launch.compose._with_settings): every job must equal Hydra's own
full composition of its overrides, and bad settings must fail with the same line."""

from __future__ import annotations

import pytest

from vlabench.core import registry
from vlabench.core.errors import ConfigError
from vlabench.launch import sweep
from vlabench.launch.compose import _plain_settings, compose


def _same_as_hydra(overrides: list[str], cache: dict) -> None:
    fast = compose(overrides, shipped_cache=cache)
    assert sweep._canonical(fast) == sweep._canonical(compose(overrides)), overrides


@pytest.mark.parametrize("preset", sorted(registry.entries("experiment")) if "experiment" in registry.GROUPS
                         else sorted(p.stem for p in (registry.BUILTIN_CONFIGS / "experiment").glob("*.yaml")))
def test_every_preset_job_equals_hydras_full_composition(preset):
    jobs, _ = sweep.jobs_for(sweep.split_request([f"+experiment={preset}"]), False)
    assert all(_plain_settings(list(j.overrides)) for j in jobs)
    cache: dict = {}
    for job in jobs[:: max(1, len(jobs) // 3)] + jobs[-1:]:   # a spread of each preset's jobs
        _same_as_hydra(list(job.overrides), cache)


@pytest.mark.parametrize("settings", [
    ["suite.tasks=[0,1]", "run.episodes_per_task=2", "run.max_steps=8"],
    ["pruner.retention=0.25", "run.name='a run with spaces'", "model.dtype=null"],
    ["run.seed=3", "suite.tasks=[2]", "run.env_workers=2", "run.batch=2"],
])
def test_settings_of_every_value_type_equal_hydras(settings):
    cache: dict = {}
    for model, pruner in (("openvla-oft-tiny", "fastv"), ("pi0-tiny", "fastv"), ("openvla-tiny", "random")):
        _same_as_hydra([f"model={model}", f"pruner={pruner}", "suite=libero_spatial", *settings], cache)


@pytest.mark.parametrize("bad", ["run.episodes_per_tsk=2", "pruner.retention=abc", "run.batch=0"])
def test_a_bad_setting_fails_with_the_same_line(bad):
    args = ["model=openvla-oft-tiny", "pruner=fastv", "suite=libero_spatial", bad]
    with pytest.raises(ConfigError) as full:
        compose(args)
    cache: dict = {}
    compose(args[:3], shipped_cache=cache)   # the combination is cached: the fast path runs
    with pytest.raises(ConfigError) as fast:
        compose(args, shipped_cache=cache)
    assert str(fast.value) == str(full.value) and type(fast.value) is type(full.value)


def test_other_override_kinds_take_hydras_full_path():
    assert _plain_settings(["model=openvla-oft-tiny", "run.seed=1"])
    assert not _plain_settings(["model=openvla-oft-tiny", "+run.extra=1"])
    assert not _plain_settings(["~pruner.retention"])
    assert not _plain_settings(["hydra.job.chdir=false"])
