"""VLA-Pruner Table 3 / App. B.3 baselines through the CLI on the tiny OpenVLA, in a short real
LIBERO episode: each run exits 0 and keeps the tokens its setting says, layer by layer (the
tiny OFT runs every pruner config in tests/test_pruners_integration.py, with these checks).

One simulator serves every run (the suite's `make_env` memoised, as tests/test_pruners_integration
does). OpenVLA (tiny: 4 layers, M = 256) is called at every step; OFT (M = 512) every 8 steps.
"""

from __future__ import annotations

import pytest
from cli_runs import run_all


pytestmark = [pytest.mark.libero, pytest.mark.slow]
PRUNERS = ("vtw", "fitprune", "holov", "efficientvla-nolayer", "efficientvla-skip8")
MODELS = ("openvla-tiny",)   # OFT: every config runs in tests/test_pruners_integration.py
MAX_STEPS = 8

# tokens_by_layer on the 4-layer tiny OpenVLA (M = 256)
TOKENS_BY_LAYER = {
    "vtw": [256, 256, 0, 0],             # K = 16 of 32 -> 2 of 4
    "holov": [128] * 4,                  # before the LLM, 50%
    "efficientvla-nolayer": [256, 256, 256, 128],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(model, pruner) -> (exit code, episodes, calls), all from one simulator build."""
    return run_all(tmp_path_factory.mktemp("table3"),
                   {(m, p): [f"model={m}", f"pruner={p}"] for m in MODELS for p in PRUNERS},
                   ["suite=libero_spatial", "suite.tasks=[0]", "run.episodes_per_task=1",
                    f"run.max_steps={MAX_STEPS}"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", PRUNERS)
def test_each_baseline_runs_an_episode_and_exits_0(runs, model, name):
    rc, eps, calls = runs[model, name]
    assert rc in (0, None)
    assert list(eps["error_type"]) == [""], eps["error"].tolist()
    assert list(eps["steps"]) == [str(MAX_STEPS)]
    m = calls[calls["source"] == "model"]
    assert len(m) >= 1 and all(float(f) > 0 for f in m["flops"])
    assert all(int(k) <= int(i) for k, i in zip(m["tokens_kept"], m["tokens_in"]))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", sorted(TOKENS_BY_LAYER))
def test_tokens_by_layer_follow_the_setting(runs, model, name):
    calls = runs[model, name][2]
    want = TOKENS_BY_LAYER[name]
    assert [[int(x) for x in str(v).split(";")] for v in calls["tokens_by_layer"]] == [want] * len(calls)


@pytest.mark.parametrize("model", MODELS)
def test_fitprune_drops_tokens_layer_by_layer(runs, model):
    for v in runs[model, "fitprune"][2]["tokens_by_layer"]:
        layers = [int(x) for x in str(v).split(";")]
        assert layers == sorted(layers, reverse=True) and layers[-1] < layers[0]
