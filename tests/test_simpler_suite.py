"""SIMPLER suites without the simulator: configuration, episodes, assets, listing, Google suites."""

from __future__ import annotations

import pytest
from conftest import NO_SIMPLER_ASSETS, ROOT, SIMPLER_ASSETS, run_cli
from omegaconf import OmegaConf

from vlabench.core.errors import ConfigError


def bridge_cfg(**over):
    cfg = OmegaConf.load(ROOT / "configs/suite/simpler_bridge.yaml")
    cfg.tasks = [0, 1, 2]  # the shared fixture has no eggplant assets
    cfg.asset_dir = str(SIMPLER_ASSETS)
    for k, v in over.items():
        cfg[k] = v
    return cfg


@pytest.fixture
def bridge():
    if not SIMPLER_ASSETS.is_dir():
        pytest.skip(NO_SIMPLER_ASSETS)
    from vlabench.suites.simpler import SimplerBridgeSuite

    return SimplerBridgeSuite(bridge_cfg())


@pytest.mark.parametrize("name", ["simpler_bridge", "simpler_google_vm", "simpler_google_va"])
def test_yaml_keeps_the_keys_the_runner_and_provenance_read(name):
    cfg = OmegaConf.load(ROOT / f"configs/suite/{name}.yaml")
    for key in ("name", "plugin", "description", "requires", "family", "protocol_version", "tasks",
                "num_tasks", "episodes_per_task", "max_steps", "image_size", "cameras", "success",
                "prompt_style", "unnorm_key", "action_convention"):
        assert key in cfg, key
    assert cfg.name == name and cfg.family == "simpler" and cfg.tasks is None
    assert cfg.success == "final_step" and cfg.prompt_style == "raw"
    assert dict(cfg.cameras) == {"agentview": "3rd_view_camera" if name == "simpler_bridge" else "overhead_camera"}
    assert cfg.num_tasks == len(cfg.task_list)
    assert cfg.max_steps == max(t.max_steps for t in cfg.task_list)


def test_bridge_protocol_counts_limits_and_episode_ids(bridge):
    every = bridge.all_tasks()
    assert [t.instruction for t in every] == ["put carrot on plate", "put the spoon on the towel",
                                              "stack the green block on the yellow block",
                                              "put eggplant into yellow basket"]
    assert [bridge.max_steps(t) for t in every] == [60, 60, 60, 120]
    assert bridge.success_mode == "final_step"
    for t in every:
        eps = bridge.episodes(t, None, 7)
        assert len(eps) == 24 and [e.init_state for e in eps] == list(range(24))
        assert {e.seed for e in eps} == {7}
    assert [t.id for t in bridge.tasks()] == [0, 1, 2]
    with pytest.raises(ConfigError, match="valid: run.episodes_per_task <= 24"):
        bridge.episodes(every[0], 25, 7)
    assert len(bridge.episodes(every[3], 64, 7)) == 64   # the eggplant grid has 64 placements


def test_missing_assets_fail_in_one_line_with_the_download_command(tmp_path):
    from vlabench.suites.simpler import SimplerBridgeSuite

    with pytest.raises(ConfigError) as e:
        SimplerBridgeSuite(bridge_cfg(asset_dir=str(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "wx250s.urdf" in msg
    assert "python -m mani_skill.utils.download_asset bridge_v2_real2sim -y" in msg
    assert "python -m mani_skill.utils.download_asset widowx250s -y" in msg


def test_asset_dir_resolution(monkeypatch, tmp_path):
    from vlabench.suites.simpler_assets import default_root, resolve_asset_root

    monkeypatch.delenv("MS_ASSET_DIR", raising=False)
    assert resolve_asset_root(None) == default_root()
    monkeypatch.setenv("MS_ASSET_DIR", str(tmp_path))
    assert resolve_asset_root(None) == tmp_path.resolve()
    # a relative suite.asset_dir is taken from the repository root, not the working directory
    assert resolve_asset_root("tests/fixtures") == (ROOT / "tests" / "fixtures").resolve()
    assert resolve_asset_root("../beside") == (ROOT.parent / "beside").resolve()


def test_eggplant_is_reported_missing_from_the_fixture():
    if not SIMPLER_ASSETS.is_dir():
        pytest.skip(NO_SIMPLER_ASSETS)
    from vlabench.suites.simpler import SimplerBridgeSuite

    with pytest.raises(ConfigError, match="PutEggplantInBasketScene-v1"):
        SimplerBridgeSuite(bridge_cfg(tasks=None))


def test_per_task_step_caps_are_recorded_as_deviations():
    from vlabench.launch.compose import compose
    from vlabench.records.provenance import protocol_deviations

    cfg = compose(["suite=simpler_bridge", "run.max_steps=80"])
    assert protocol_deviations(cfg, 4) == ["run.max_steps=80 caps the protocol's policy steps of tasks 3 (120)"]
    cfg = compose(["suite=simpler_bridge", "run.max_steps=80", "suite.tasks=[0]"])
    assert protocol_deviations(cfg, 4) == ["suite.tasks=[0] selects 1 of 4 tasks"]
    cfg = compose(["suite=simpler_bridge", "run.max_steps=8", "suite.tasks=[0,1]"])
    assert "tasks 0 (60), 1 (60)" in protocol_deviations(cfg, 4)[0]


def test_list_shows_the_simpler_suites_with_availability():
    import importlib.util

    from vlabench.commands import listing
    from vlabench.core import registry

    res = run_cli("list")
    assert res.returncode == 0, res.stderr
    for name in ("simpler_bridge", "simpler_google_vm", "simpler_google_va"):
        assert name in res.stdout
    if not all(importlib.util.find_spec(m) for m in ("mani_skill", "sapien")):
        assert listing.readiness(registry.entry("suite", "simpler_bridge")).status == "no"
    if importlib.util.find_spec("simpler_env") is None:
        r = listing.readiness(registry.entry("suite", "simpler_google_vm"))
        assert r.status == "no" and "simpler_env" in r.missing[0]
        assert "SimplerEnv" in " ".join(res.stdout.split())


def test_google_suite_without_simplerenv_stops_in_one_line(tmp_path):
    import importlib.util

    if importlib.util.find_spec("simpler_env") is not None:
        pytest.skip("SimplerEnv is installed here")
    res = run_cli("run", "model=test-zero", "suite=simpler_google_vm", f"run.output_dir={tmp_path}")
    assert res.returncode == 2
    err = res.stderr.strip()
    assert "\n" not in err and "simpler_env" in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name,counts", [("simpler_google_vm", [300, 240, 108, 108]),
                                         ("simpler_google_va", [825, 600, 189, 189])])
def test_google_episode_grids(name, counts):
    from vlabench.suites.simpler_google import SimplerGoogleSuite

    suite = SimplerGoogleSuite(OmegaConf.load(ROOT / f"configs/suite/{name}.yaml"))
    tasks = suite.all_tasks()
    assert [len(suite.episodes(t, None, 7)) for t in tasks] == counts
    assert [suite.max_steps(t) for t in tasks] == [80, 80, 113, 113]
    coke = suite.expanded(0)
    xs = sorted({e["obj"]["init_xy"][0] for e in coke})
    assert len(xs) == 5 and xs[0] == -0.35 and xs[-1] == -0.12
    if name == "simpler_google_vm":
        assert all(e["robot"]["overlay"] for t in tasks for e in suite.expanded(t.id))
        assert {e["kwargs"]["urdf_version"] for e in coke} == {None, "recolor_tabletop_visual_matching_1",
                                                              "recolor_tabletop_visual_matching_2",
                                                              "recolor_cabinet_visual_matching_1"}
    else:
        assert not any(e["robot"]["overlay"] for t in tasks for e in suite.expanded(t.id))
    drawer = suite.expanded(2)
    assert all(e["kwargs"]["shader_dir"] == "rt" for e in drawer)
