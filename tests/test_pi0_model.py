"""pi0 built three ways from one code path, its checkpoint layout, its bad inputs and its FLOPs.

- tiny random weights, saved in lerobot's layout, load back through `model.checkpoint=<dir>`
  (the path real checkpoints take) and give the same actions;
- a directory with missing or unexpected tensors names them and exits 2;
- a suite without pi0's input mapping is refused in one line naming the LIBERO suites;
- FLOPs: the analytic count equals FlopCounterMode's on pi0-tiny, and the full-size meta build
  has the published parameter count;
- inputs: normalisation, padding and prompt cleaning hand-worked (openpi transforms.py,
  tokenizer.py)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from vlabench.launch.compose import compose
from vlabench.models.pi0.build import build_pi0
from vlabench.models.pi0.checkpoint import save_lerobot_layout
from vlabench.models.pi0.inputs import clean_prompt, normalize, pad_to, unnormalize
from vlabench.models.synthetic import synthetic_episode


def tiny(*extra: str, device: str = "cpu"):
    cfg = compose(["model=pi0-tiny", "suite=libero_spatial", *extra])
    return build_pi0(cfg.model, None, cfg.suite, device)


def actions(policy, n: int = 2) -> list[np.ndarray]:
    out = []
    for obs in synthetic_episode(n, seed=3):
        torch.manual_seed(7)
        out.append(policy.act(obs).actions)
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    policy = tiny()
    # multiples of 1/8: exact in the float32 statistics file
    stats = {"state": {"mean": [k / 8 - 0.5 for k in range(8)], "std": [0.5 + k / 8 for k in range(8)]},
             "actions": {"mean": [k / 8 - 0.25 for k in range(7)], "std": [0.25 + k / 4 for k in range(7)]}}
    policy.norm_stats = stats
    path = save_lerobot_layout(policy.model, policy.dims, stats, tmp_path_factory.mktemp("pi0") / "ckpt")
    return policy, path


def test_a_saved_tiny_model_loads_through_the_checkpoint_path_and_acts_identically(saved):
    policy, path = saved
    cfg = compose(["model=pi0", "suite=libero_spatial", f"model.checkpoint={path}",
                   "model.tokenizer=stand-in", "model.dtype=float32"])
    loaded = build_pi0(cfg.model, None, cfg.suite, "cpu")
    assert loaded.dims == policy.dims
    assert loaded.norm_stats["actions"]["std"] == pytest.approx(policy.norm_stats["actions"]["std"])
    for a, b in zip(actions(policy), actions(loaded)):
        assert a.shape == (5, 7)
        np.testing.assert_array_equal(a, b)
    assert any("stand-in" in d for d in loaded.deviations)


def _edit(path, tmp_path, drop: str | None = None, add: str | None = None):
    import shutil

    from safetensors.torch import load_file, save_file

    out = tmp_path / "edited"
    shutil.copytree(path, out)
    sd = load_file(str(out / "model.safetensors"))
    if drop:
        sd = {k: v for k, v in sd.items() if drop not in k}
    if add:
        sd[add] = torch.zeros(3)
    save_file(sd, str(out / "model.safetensors"))
    return out


@pytest.mark.parametrize("drop,add,named", [
    ("gemma_expert.model.layers.1.mlp.up_proj", None, "gemma_expert.model.layers.1.mlp.up_proj"),
    (None, "paligemma_with_expert.extra_head.weight", "paligemma_with_expert.extra_head.weight"),
])
def test_a_checkpoint_with_missing_or_unexpected_tensors_names_them_and_exits_2(
        saved, tmp_path, cli, drop, add, named):
    _, path = saved
    bad = _edit(path, tmp_path, drop, add)
    res = cli("run", "model=pi0", f"model.checkpoint={bad}", "model.tokenizer=stand-in",
              "suite=libero_spatial", "suite.tasks=[0]", "run.episodes_per_task=1",
              f"run.output_dir={tmp_path / 'out'}")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr
    assert named in lines[0] and "missing" in lines[0] and "unexpected" in lines[0]
    assert not any((tmp_path / "out").rglob("episodes.csv"))


def test_a_suite_without_pi0_inputs_is_refused_in_one_line(tmp_path, cli):
    from conftest import NO_SIMPLER_ASSETS, SIMPLER_ASSETS as assets

    if not assets.is_dir():
        pytest.skip(NO_SIMPLER_ASSETS)
    res = cli("run", "model=pi0-tiny", "suite=simpler_bridge", "suite.tasks=[0]", f"suite.asset_dir={assets}",
              f"run.output_dir={tmp_path}")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr
    assert "libero_spatial" in lines[0] and "simpler_bridge" in lines[0]


def test_analytic_flops_equal_the_flop_counter_on_pi0_tiny():
    policy = tiny("model.count_flops=true")
    torch.manual_seed(0)
    out = policy.act(synthetic_episode(1)[0])
    counted = out.stats.flops
    analytic = policy.analytic_flops()
    assert counted > 0
    assert analytic == pytest.approx(counted, rel=1e-9)
    by = policy.last_flops_by_stage
    assert set(by) == {"vision", "llm", "action_head"} and by["action_head"] > 0


def test_full_size_meta_build_has_pi0s_parameters():
    cfg = compose(["model=pi0", "model.checkpoint=null", "suite=libero_spatial"])
    policy = build_pi0(cfg.model, None, cfg.suite, "cpu")
    assert policy.device == "meta"
    n = sum(p.numel() for p in policy.model.parameters())
    expert_lm_head = 257152 * 1024   # lerobot keeps the expert's unused LM head; so do we
    # PaliGemma 3B (2.92B) + Gemma 300M expert (0.31B) + projections
    assert 3.23e9 < n - expert_lm_head < 3.25e9
    torch.manual_seed(0)
    policy.allow_shape_only_calls = True
    out = policy.act(synthetic_episode(1)[0])
    assert out.stats.tokens_in == 512 and out.stats.flops > 2e12


def test_inputs_are_normalised_padded_and_cleaned_as_openpi_does():
    stats = {"mean": [1.0, 2.0, 3.0], "std": [2.0, 4.0, 0.0]}
    x = np.array([3.0, 2.0, 3.0])
    np.testing.assert_allclose(normalize(x, stats), [2 / (2 + 1e-6), 0.0, 0.0])
    np.testing.assert_allclose(unnormalize(np.array([1.0, -1.0, 0.5, 9.0]), stats),
                               [1 + 2 + 1e-6, 2 - 4 - 1e-6, 3 + 0.5e-6])
    np.testing.assert_array_equal(pad_to(np.array([1.0, 2.0]), 4), [1.0, 2.0, 0.0, 0.0])
    assert clean_prompt("  put the_bowl\non plate ") == "put the bowl on plate"
    ids = tiny().tokenizer.prompt("put the_bowl on the plate", 48)
    assert ids[0] == 2 and ids[-1] == 108 and len(ids) == 1 + 6 + 1
