"""SP-VLA's Table 1 baselines and Table 2 ablations through the CLI on the tiny OpenVLA (the tiny
OFT runs every pruner config in tests/test_pruners_integration.py) in a short real LIBERO episode (`vlabench run model=... pruner=... suite=libero_spatial
suite.tasks=[0] run.episodes_per_task=1 run.max_steps=8`), one simulator per camera set."""

from __future__ import annotations

import pytest
from cli_runs import run_all


pytestmark = [pytest.mark.libero, pytest.mark.slow]
MODELS = ("openvla-tiny",)   # OFT: every config runs in tests/test_pruners_integration.py
# visual tokens kept per image at the YAML defaults, without +S edge tokens
BUDGET = {"fopru": 183, "prumerge": 171, "visionzip": 85, "fastvlm": 64}
ABLATIONS = ("sp-vla-no-pruning", "sp-vla-no-scheduling", "sp-vla-no-canny")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(model, pruner) -> (episodes, calls) DataFrames, every run exiting 0."""
    results = run_all(tmp_path_factory.mktemp("sp_baselines"),
                      {(m, p): [f"model={m}", f"pruner={p}"] for m in MODELS
                       for p in (*BUDGET, *ABLATIONS)},
                      ["suite=libero_spatial", "suite.tasks=[0]", "run.episodes_per_task=1",
                       "run.max_steps=8"])
    for key, (rc, *_) in results.items():
        assert rc in (0, None), f"vlabench run model={key[0]} pruner={key[1]} exited {rc}"
    return {key: (eps, calls) for key, (_, eps, calls) in results.items()}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", [*BUDGET, *ABLATIONS])
def test_each_completes_an_episode(runs, model, name):
    eps, calls = runs[model, name]
    assert list(eps["error_type"]) == [""], eps["error"].tolist()
    model_calls = calls[calls["source"] == "model"]
    assert len(model_calls) >= 1
    assert all(int(k) <= int(i) for k, i in zip(model_calls["tokens_kept"], model_calls["tokens_in"]))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(BUDGET))
def test_baselines_keep_their_budget_plus_edge_tokens_only_with_s(runs, model, name):
    calls = runs[model, name][1]
    kept = [int(k) for k in calls["tokens_kept"]]
    if name in ("visionzip", "fastvlm"):          # +S: LIBERO's scene has Canny edges
        assert kept and all(BUDGET[name] < k < 256 for k in kept)
    else:
        assert kept == [BUDGET[name]] * len(kept)
