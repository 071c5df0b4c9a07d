"""FastV and the random control: layer mapping, last-token scores, budgets, seeding."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import ACTION, BOS, PROPRIO, STOP, TEXT, VISUAL  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.random_drop import RandomDrop  # noqa: E402

KINDS = [BOS, VISUAL, VISUAL, VISUAL, VISUAL, TEXT, TEXT]


def attn() -> torch.Tensor:
    a = torch.zeros(2, 7, 7)
    a[0, -1] = torch.tensor([.1, .3, .0, .2, .1, .1, .2])
    a[1, -1] = torch.tensor([.1, .1, .2, .4, .0, .1, .1])
    a[:, 5, 1] = 1.0                    # a non-last row favouring V0: must be ignored
    return a


def _openvla_info(**kw):
    import dataclasses
    return dataclasses.replace(info(**kw), autoregressive=True)


@pytest.mark.parametrize("reading,autoregressive", [("paper", False), ("paper", True), ("code", True)])
def test_fastv_reads_layer_k_minus_1_and_keeps_the_last_tokens_favourites(reading, autoregressive):
    # FastV's own definition; also VLA-Pruner's OpenVLA baseline (the code reading on OpenVLA)
    p = FastV({"k": 3, "retention": 0.5, "reading": reading})
    p.bind(_openvla_info() if autoregressive else info())
    assert p.attention_layers == frozenset({2})
    # head means of the last row over V0..V3: .2, .1, .3, .05 -> keep V2 and V0
    assert p.after_layer(view(2, KINDS, attn())).tolist() == [0, 2]
    assert p.after_layer(view(1, KINDS, attn())) is None
    assert p.after_layer(view(2, KINDS, attn(), phase="decode")) is None


def test_fastv_budget_is_exact_on_meta_tensors():
    p = FastV({"k": 3, "retention": 0.75, "reading": "paper"})
    p.bind(info())
    out = p.after_layer(view(2, KINDS, torch.empty(2, 7, 7, device="meta")))
    assert out.device.type == "meta" and out.numel() == 3


def test_fastv_refuses_a_layer_the_model_lacks_and_a_bad_retention():
    with pytest.raises(ConfigError):
        FastV({"k": 4, "reading": "paper"}).bind(info(num_layers=4))
    with pytest.raises(ConfigError):
        FastV({"k": 5}).bind(info(num_layers=4))
    # OFT's code scores layer K itself; with K = 3 of 4 layers it keeps one pruned layer
    p = FastV({"k": 3})
    p.bind(info(num_layers=4))
    assert p.attention_layers == frozenset({2})
    with pytest.raises(ConfigError):
        FastV({"retention": 0.0})


@pytest.mark.parametrize("reading,bad,valid", [("code", 4, "0..3"), ("paper", 4, "1..3"),
                                               ("paper", 0, "1..3")])
def test_an_out_of_range_k_names_the_value_typed_and_the_valid_range_of_k(reading, bad, valid):
    with pytest.raises(ConfigError) as e:
        FastV({"k": bad, "reading": reading}).bind(info(num_layers=4))
    assert f"pruner.k={bad} " in str(e.value) and f"(valid: {valid})" in str(e.value)
    for k in range(int(valid[0]), int(valid[-1]) + 1):   # every value named valid is accepted
        FastV({"k": k, "reading": reading}).bind(info(num_layers=4))


# OpenVLA-OFT as VLA-Pruner's OFT baseline ran FastV: 2 cameras x 4 patches (ids 0-3, 4-7).
OFT_KINDS = [BOS] + [VISUAL] * 8 + [PROPRIO, TEXT, TEXT, ACTION, ACTION, STOP]


def oft_attn() -> torch.Tensor:
    """Prefill rows (0-11) favour V0 > V1 > V2 > V3 > V4 > V5 > V6 > V7 on average over the two
    heads; the action and stop rows (12-14) favour V7, V6, V5 by far."""
    a = torch.zeros(2, 15, 15)
    a[0, :12, 1:9] = torch.tensor([.16, .14, .12, .10, .08, .06, .04, .02])
    a[1, :12, 1:9] = torch.tensor([.14, .12, .10, .08, .06, .04, .02, .00])
    a[:, 12:, 8] = 0.9
    a[:, 12:, 7] = 0.8
    a[:, 14, 6] = 0.95                  # the stop (last) row alone: V5 first
    return a


def oft_info(num_layers: int = 5):
    return info(num_visual=8, num_layers=num_layers, cameras=("agentview", "wrist"))


def test_fastv_on_oft_code_scores_layer_k_with_prefill_rows_and_budgets_each_camera():
    p = FastV({"k": 3, "retention": 0.5})
    p.bind(oft_info())
    assert p.reading == "code" and p.attention_layers == frozenset({3})
    assert p.after_layer(view(2, OFT_KINDS, oft_attn())) is None   # layer K-1 no longer scores
    # prefill-row means: camera 0 ranks V0 > V1 > V2 > V3, camera 1 V4 > V5 > V6 > V7;
    # round(4 x 0.5) = 2 per camera, although V0..V3 are the global top 4
    assert p.after_layer(view(3, OFT_KINDS, oft_attn())).tolist() == [0, 1, 4, 5]
    out = p.after_layer(view(3, OFT_KINDS, torch.empty(2, 15, 15, device="meta")))
    assert out.device.type == "meta" and out.numel() == 4


def test_fastv_on_oft_paper_reading_is_fastvs_own_last_token_layer_k_minus_1_one_pool():
    p = FastV({"k": 3, "retention": 0.5, "reading": "paper"})
    p.bind(oft_info())
    assert p.attention_layers == frozenset({2})
    # the stop row: V5 (.95), V7 (.9), V6 (.8), then V0..V4 tie at zero: the lowest id, V0
    assert p.after_layer(view(2, OFT_KINDS, oft_attn())).tolist() == [0, 5, 6, 7]
    assert p.after_layer(view(3, OFT_KINDS, oft_attn())) is None


def test_score_rows_override_picks_last_prefill_or_all_rows():
    # all 15 rows: camera 0 keeps V0, V1 (.15 and .13 x 12 / 15); camera 1: V7 (.01 x 12 + 3 x
    # .9) / 15 and V6 (.03 x 12 + 3 x .8) / 15 beat V5 (.05 x 12 + .95) / 15 and V4 (.07 x 12 / 15)
    p = FastV({"k": 3, "retention": 0.5, "score_rows": "all"})
    p.bind(oft_info())
    assert p.after_layer(view(3, OFT_KINDS, oft_attn())).tolist() == [0, 1, 6, 7]
    q = FastV({"k": 3, "retention": 0.5, "score_rows": "last"})
    q.bind(oft_info())                              # code layer and pools, the stop row's scores
    assert q.after_layer(view(3, OFT_KINDS, oft_attn())).tolist() == [0, 1, 5, 7]
    with pytest.raises(ConfigError, match="score_rows"):
        FastV({"score_rows": "first"})


def test_fastv_per_camera_budget_rounds_each_cameras_share():
    p = FastV({"k": 1, "retention": 0.125})
    p.bind(info(num_visual=512, num_layers=4, cameras=("agentview", "wrist"), grid=16))
    assert p.budget() == 32                         # round(256 x 0.125) per camera, 64 in all
    q = FastV({"k": 1, "retention": 0.0725})
    q.bind(info(num_visual=512, num_layers=4, cameras=("agentview", "wrist"), grid=16))
    assert q.budget() == 19                         # round(18.56): 38 in all (one pool: 37)


def test_random_drop_keeps_the_budget_and_follows_the_torch_seed():
    p = RandomDrop({"k": 3, "retention": 0.5, "reading": "paper"})
    p.bind(info(num_visual=4))
    picks = []
    for seed in (7, 7, 8, 9, 10):
        torch.manual_seed(seed)
        out = p.after_layer(view(2, KINDS))
        assert out.numel() == 2 and set(out.tolist()) <= {0, 1, 2, 3}
        assert out.tolist() == sorted(out.tolist())
        picks.append(tuple(out.tolist()))
    assert picks[0] == picks[1] and len(set(picks)) > 1
    assert p.attention_layers == frozenset({2})


def test_fastv_readings_default_to_vla_pruners_baseline_code():
    assert [r.default for r in FastV.readings] == ["code"] * 3
    assert len(RandomDrop.readings) == 2        # the score rows do not apply to random drops
