"""The tiny OpenVLA-family models, with pruning, complete real SIMPLER Bridge episodes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import NO_SIMPLER_ASSETS, ROOT, SIMPLER_ASSETS, run_cli

pytestmark = pytest.mark.simpler
ASSETS = SIMPLER_ASSETS


@pytest.mark.parametrize("model,pruner", [("openvla-oft-tiny", "vla-pruner"), ("openvla-tiny", "fastv")])
def test_tiny_model_with_a_pruner_completes_a_simpler_episode(tmp_path, model, pruner):
    if not ASSETS.is_dir():
        pytest.skip(NO_SIMPLER_ASSETS)
    res = run_cli("run", f"model={model}", f"pruner={pruner}", "suite=simpler_bridge", "suite.tasks=[0]",
                  "run.episodes_per_task=1", "run.max_steps=8", f"suite.asset_dir={ASSETS}",
                  f"run.output_dir={tmp_path}", "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = next(tmp_path.glob(f"{model}-{pruner}-simpler_bridge__*"))
    eps = pd.read_csv(run_dir / "episodes.csv", keep_default_na=False)
    assert eps["error_type"].tolist() == [""] and eps["steps"].tolist() == [8]
    calls = pd.read_csv(run_dir / "calls.csv")
    assert (calls["tokens_in"] == 256).all()        # one 3rd-view image, no wrist camera
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if model == "openvla-oft-tiny":
        assert any("no wrist camera" in d for d in manifest["deviations"])
        assert manifest["rendered_cameras"] == ["agentview"]


def test_a_google_scene_without_its_stage_file_is_refused(tmp_path):
    """SAPIEN builds a scene whose stage file is missing without its table: refused by name."""
    from vlabench.suites.simpler_google import require_scene

    require_scene(tmp_path, "dummy_drawer")   # the drawer stations need no stage file
    with pytest.raises(FileNotFoundError, match="google_pick_coke_can_1_v4.*without its table"):
        require_scene(tmp_path, "google_pick_coke_can_1_v4")
    stage = tmp_path / "hab2_bench_assets" / "stages" / "google_pick_coke_can_1_v4.glb"
    stage.parent.mkdir(parents=True)
    stage.write_bytes(b"glTF")
    require_scene(tmp_path, "google_pick_coke_can_1_v4")


def test_list_names_the_google_tasks_whose_scene_files_are_missing(tmp_path):
    """`vlabench list`: a SimplerEnv data/ folder without a stage file leaves only the drawer
    tasks runnable, and says which files and which suite.tasks."""
    from vlabench.commands.listing import google_scenes_missing
    from vlabench.core import yamlio

    cfg = yamlio.safe_load((ROOT / "configs" / "suite" / "simpler_google_vm.yaml").read_text())
    state, why = google_scenes_missing(tmp_path, cfg["task_list"])
    assert state == "partly" and "google_pick_coke_can_1_v4.glb" in why and "suite.tasks=[2,3]" in why
    stages = tmp_path / "hab2_bench_assets" / "stages"
    stages.mkdir(parents=True)
    for scene in {s for s in why.split(": ")[1].split(";")[0].split(", ")}:
        (stages / scene).write_bytes(b"glTF")
    assert google_scenes_missing(tmp_path, cfg["task_list"]) == ("yes", None)
