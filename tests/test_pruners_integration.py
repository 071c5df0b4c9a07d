"""Every pruner config in configs/pruner/ on the tiny OFT model in a short real LIBERO episode.

All methods run in this one module through the CLI entry point (`vlabench run ...`, in-process
so that one LIBERO simulator serves every run: the suite's `make_env` is memoised and its
`close` deferred; building the simulator costs ~20 s, each episode reset ~13 s). Methods are
discovered from the YAML files, so new plugins are covered automatically. max_steps=9 gives two
model calls per episode (OFT chunk of 8: steps 0 and 8). Methods with a known budget are
checked exactly against it; any other method must complete, keep at most its input tokens and
record positive FLOPs.
"""

from __future__ import annotations

import pandas as pd
import pytest
from cli_runs import run_all

from conftest import ROOT

pytestmark = [pytest.mark.libero, pytest.mark.slow]
PRUNERS = sorted(p.stem for p in (ROOT / "configs" / "pruner").glob("*.yaml"))
MAX_STEPS = 9

# tokens_by_layer of every call on the tiny OFT model (M = 512 visual tokens, 4 layers)
TOKENS_BY_LAYER = {
    "none": [512] * 4,
    "fastv": [512, 512, 512, 256],        # K = 3, retention .5
    "random": [512, 512, 512, 256],
    "divprune": [256] * 4,                # before the LLM, retention .5
    "sparsevlm": [512, 512, 512, 256],    # VLA-Pruner's run: one step at K = 3, retention .5
    # VLA-Pruner Table 3 baselines (their OpenVLA runs: tests/test_pruner_table3_cli.py)
    "vtw": [512, 512, 0, 0],              # K = 16 of 32 -> 2 of 4
    "holov": [256] * 4,                   # before the LLM, 50% per camera
    "efficientvla-nolayer": [512, 512, 512, 256],
}
# SP-VLA Table 1 baselines: visual tokens kept per image at the YAML defaults, without +S edge
# tokens (their OpenVLA runs: tests/test_pruner_sp_baselines_cli.py)
SP_BUDGET = {"fopru": 183, "prumerge": 171, "visionzip": 85, "fastvlm": 64}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """pruner name -> (episodes, calls) DataFrames, all from one simulator build."""
    results = run_all(tmp_path_factory.mktemp("pruners"), {p: [f"pruner={p}"] for p in PRUNERS},
                      ["model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                       "run.episodes_per_task=1", f"run.max_steps={MAX_STEPS}"])
    for name, (rc, *_) in results.items():
        assert rc in (0, None), f"vlabench run with pruner={name} exited {rc}"
    return {name: (eps, calls) for name, (_, eps, calls) in results.items()}


def _layers(calls: pd.DataFrame) -> list[list[int]]:
    return [[int(x) for x in str(v).split(";")] for v in calls["tokens_by_layer"]]


def _flops(calls: pd.DataFrame) -> list[float]:
    return [float(x) for x in calls["flops"]]


@pytest.mark.parametrize("name", PRUNERS)
def test_every_pruner_completes_a_real_episode(runs, name):
    eps, calls = runs[name]
    assert list(eps["error_type"]) == [""], eps["error"].tolist()
    assert list(eps["steps"]) == [str(MAX_STEPS)]
    model = calls[calls["source"] == "model"]
    assert len(model) >= 1
    assert all(int(k) <= int(i) for k, i in zip(model["tokens_kept"], model["tokens_in"]))
    assert all(f > 0 for f in _flops(model))


@pytest.mark.parametrize("name", sorted(TOKENS_BY_LAYER))
def test_tokens_and_flops_follow_the_budget(runs, name):
    if name not in runs:
        pytest.skip(f"no config for {name}")
    calls = runs[name][1]
    assert _layers(calls) == [TOKENS_BY_LAYER[name]] * len(calls)
    base = _flops(runs["none"][1])[0]
    flops = _flops(calls)
    if name == "none":
        assert flops == [base] * len(calls)
    else:
        assert max(flops) < base
    if name == "divprune":
        assert max(flops) < min(_flops(runs["fastv"][1]))   # fewer tokens at every layer


def test_fastv_and_random_cost_the_same(runs):
    assert _flops(runs["fastv"][1]) == _flops(runs["random"][1])


def test_efficientvla_keeps_112_tokens_and_calibrates_on_the_second_call(runs):
    calls = runs["efficientvla"][1]                          # SpecPrune's code: skips from call 3
    assert list(calls["mode"])[:2] == ["", "calibrate"]
    assert _layers(calls)[:2] == [[512, 512, 512, 112]] * 2
    assert max(_flops(calls)) < _flops(runs["none"][1])[0]


def test_fitprune_drops_tokens_layer_by_layer(runs):
    for layers in _layers(runs["fitprune"][1]):
        assert layers == sorted(layers, reverse=True) and layers[-1] < layers[0]


@pytest.mark.parametrize("name", sorted(SP_BUDGET))
def test_sp_vla_baselines_keep_their_budget_per_camera_plus_edge_tokens_only_with_s(runs, name):
    kept = [int(k) for k in runs[name][1]["tokens_kept"]]
    if name in ("visionzip", "fastvlm"):          # +S: LIBERO's scene has Canny edges
        assert kept and all(2 * SP_BUDGET[name] < k < 2 * 256 for k in kept)
    else:
        assert kept == [2 * SP_BUDGET[name]] * len(kept)


def test_vla_cache_reuses_static_patches_on_the_second_call(runs):
    calls = runs["vla-cache"][1]
    flops = _flops(calls)
    assert _layers(calls) == [[512] * 4] * len(calls)      # reused tokens stay keys
    assert len(flops) >= 2 and flops[1] < flops[0]
