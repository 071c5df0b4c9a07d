"""CLI and configuration: lazy plugins, group listing, protocol constants, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import cli_env, run_cli

from vlabench.core import registry
from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose

PROTOCOL_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300,
                      "libero_10": 520, "libero_90": 400}


def test_importing_vlabench_and_listing_do_not_import_heavy_modules():
    code = ("import sys, json, vlabench, vlabench.commands.cli, vlabench.launch.compose, vlabench.run.runner, "
            "vlabench.records.files\n"
            "from vlabench.core import registry\n"
            "[registry.entries(g) for g in registry.GROUPS]\n"
            "print(json.dumps([m for m in ('torch','mujoco','libero','mani_skill','robosuite') "
            "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=cli_env(), check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_list_shows_every_group_and_availability():
    res = run_cli("list")
    assert res.returncode == 0, res.stderr
    for name in ["libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90", "none"]:
        assert name in res.stdout
    assert "yes" in res.stdout


def test_run_help_lists_groups_and_choices():
    res = run_cli("run", "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    for group in registry.GROUPS:
        names = ", ".join(sorted(registry.entries(group)))
        assert f"{group}: {names}" in text
    assert "libero_10, libero_90, libero_goal, libero_object, libero_spatial" in text


@pytest.mark.parametrize("suite,steps", sorted(PROTOCOL_MAX_STEPS.items()))
def test_suite_configs_carry_the_protocol_constants(suite, steps):
    cfg = compose(["model=test-zero", f"suite={suite}"])
    s = cfg.suite
    assert (s.max_steps, s.episodes_per_task, s.wait_steps, s.image_size) == (steps, 50, 10, 256)
    assert list(s.wait_action) == [0, 0, 0, 0, 0, 0, -1] and s.flip_images and s.env_seed == 0
    assert cfg.run.name == f"test-zero-none-{suite}" and cfg.run.seed == 7


@pytest.mark.parametrize("override,message", [
    ("suite=libero_99", "unknown suite 'libero_99' .did you mean libero_90..; valid: libero_10"),
    ("pruner=magic", "unknown pruner 'magic'; valid: "),
    ("model=gpt5", "unknown model 'gpt5'; valid:"),
    ("suite.tasks=[10]", "task ids are 0..9"),
    ("suite.tasks=[-1,2]", "task ids are 0..9"),
    ("run.episodes_per_task=0", "run.episodes_per_task must be a positive integer"),
    ("run.max_steps=-5", "run.max_steps must be a positive integer"),
    ("run.device=tpu", "valid: auto, cpu, cuda, cuda:N"),
])
def test_bad_config_is_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compose(["model=test-zero", override])


@pytest.mark.parametrize("args", [
    ["run", "model=test-zero", "suite=nope"],
    ["run", "model=test-zero", "suite.tasks=[42]"],
    ["run", "model=test-zero", "run.episodes_per_task=-1"],
    ["run", "model=test-zero", "run.output_dir=/proc/forbidden"],
])
def test_cli_bad_input_exits_2_with_one_line_and_no_traceback(args):
    res = run_cli(*args)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr


def test_out_of_tree_configs_extend_the_registry():
    assert "test-zero" in registry.entries("model")
    assert registry.entry("model", "test-zero").missing() == []


def test_running_a_shapes_only_full_size_model_is_refused_before_any_episode(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("with a GPU, model.checkpoint=null builds real full-size weights")
    res = run_cli("run", "model=openvla-oft", "model.checkpoint=null", "suite=libero_spatial",
                  "suite.tasks=[0]", "run.episodes_per_task=1", f"run.output_dir={tmp_path}")
    assert res.returncode == 2 and "use `vlabench bench`" in res.stderr
    assert not any(tmp_path.iterdir())          # no half-made run directory is left behind
