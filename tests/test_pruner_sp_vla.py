"""SP-VLA against its paper (Sec. 3) on hand-worked inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.paper_pruner_views import model_info
from vlabench.pruners.base import VisualTokens
from vlabench.pruners.sp_vla import (DELIBERATIVE, INTUITIVE, SPVLA, accumulated_attention,
                                     canny_patch_ids, extrapolate, lightweight_allowed,
                                     retention_ratio, ridge_fit, spatial_semantic_keep)

pytest.importorskip("cv2")


def test_eq7_retention_ratio():
    assert retention_ratio(0.1, 0.2, 1.0) == 1.0            # below v_pmin: no pruning
    assert retention_ratio(0.2, 0.2, 1.0) == 1.0
    assert retention_ratio(0.6, 0.2, 1.0) == pytest.approx(0.5)
    assert retention_ratio(1.0, 0.2, 1.0) == pytest.approx(0.0)


def test_ridge_fit_recovers_a_line_and_shrinks_with_lambda():
    t = np.arange(6.0)
    beta = ridge_fit(np.stack([2 * t + 1, -t], axis=1), lam=0.0)
    assert beta == pytest.approx(np.array([[2.0, -1.0], [1.0, 0.0]]))
    # lambda = 1 on a constant c: beta = c/167 [15, 111], so a_6 = 201/167 c (worked by hand)
    b1 = ridge_fit(np.full((6, 1), 0.3), lam=1.0)
    assert (np.array([6.0, 1.0]) @ b1)[0] == pytest.approx(0.3 * 201 / 167)


def test_extrapolation_continues_translation_and_rotation_and_reuses_the_gripper():
    buf = np.zeros((6, 7))
    buf[:, 0] = 0.1 + 0.05 * np.arange(6)                   # x: 0.10 .. 0.35 -> 0.40
    buf[:, 3] = 0.2                                         # rotation constant
    buf[:, 6] = [-1, -1, -1, 1, 1, 1]                        # gripper: the last value
    a = extrapolate(buf, lam=0.0)
    assert a[0] == pytest.approx(0.40) and a[3] == pytest.approx(0.2) and a[6] == 1.0
    buf[:, 1] = 0.5 + 0.5 * np.arange(6)                    # y would reach 3.5: clipped
    assert extrapolate(buf, lam=0.0)[1] == 1.0


def test_lightweight_trigger_needs_moderate_speed_and_a_generated_majority():
    fast, slow = np.array([0.3, -0.3, 0.3, 0, 0, 0, 1]), np.array([0.1, 0.3, 0.3, 0, 0, 0, 1])
    assert lightweight_allowed(fast, [True] * 6, 6, 0.2, 0.5, 0.5)
    assert not lightweight_allowed(slow, [True] * 6, 6, 0.2, 0.5, 0.5)       # |x| < v_min
    assert not lightweight_allowed(fast * 2, [True] * 6, 6, 0.2, 0.5, 0.5)   # |x| > v_max
    assert not lightweight_allowed(fast, [True] * 3 + [False] * 3, 6, 0.2, 0.5, 0.5)  # 0.5
    assert lightweight_allowed(fast, [True] * 4 + [False] * 2, 6, 0.2, 0.5, 0.5)
    assert not lightweight_allowed(fast, [True] * 5, 6, 0.2, 0.5, 0.5)       # buffer not full


def test_scheduler_serves_steps_without_the_model_until_the_ratio_drops():
    p = SPVLA({})
    p.bind(model_info())
    chunk = np.tile([0.3, -0.3, 0.3, 0.0, 0.0, 0.0, 1.0], (8, 1))
    p.end_of_step(chunk, None)
    served = []
    for _ in range(5):
        a = p.skip_call(None)
        served.append(p.mode())
        if a is None:
            break
        assert a.shape == (1, 7) and a[0, :3] == pytest.approx([0.3, -0.3, 0.3], abs=0.01)
        p.end_of_step(a, None)
    # flags G G G G G G -> 5/6, 4/6 served, then 3/6 = tau is not above it
    assert served == [INTUITIVE, INTUITIVE, INTUITIVE, DELIBERATIVE]
    p.reset()
    assert p.skip_call(None) is None and not p._actions


def test_canny_patch_mapping():
    img = np.zeros((56, 56, 3), np.uint8)
    img[:, 21:] = 255                  # a vertical edge inside patch column 1 (pixels 14..27)
    assert canny_patch_ids(img, 4, 100, 200).tolist() == [1, 5, 9, 13]
    assert canny_patch_ids(np.zeros((56, 56, 3), np.uint8), 4, 100, 200).numel() == 0


def test_accumulated_attention_and_order_preserving_union():
    probs = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]]])
    assert accumulated_attention(probs).tolist() == pytest.approx([0.7 / 3, 1.7 / 3, 0.6 / 3])
    accu = torch.tensor([0.1, 0.5, 0.2, 0.15])
    prio = torch.tensor([False, False, True, False])
    assert spatial_semantic_keep(accu, prio, 2).tolist() == [1, 2]
    assert spatial_semantic_keep(accu, prio, 1).tolist() == [2]        # T_select always kept
    assert spatial_semantic_keep(accu, prio, 4).tolist() == [0, 1, 2, 3]


def test_pruning_is_off_at_low_speed_and_follows_eq7_above_it():
    p = SPVLA({"v_pmin": 0.2, "v_pmax": 1.0, "semantic_threshold": 0.5})
    p.bind(model_info(grid=4, cameras=("agentview",)))
    img = np.zeros((56, 56, 3), np.uint8)
    img[:, 21:] = 255
    att = torch.full((1, 16, 16), 1 / 16)
    att[:, :, 0] += 0.01                                             # patch 0 most attended
    tok = VisualTokens(torch.zeros(16, 4), torch.zeros(16, 4), {"agentview": img},
                       {"agentview": att}, "task", 1)
    p.end_of_step(np.array([[0.05, 0, 0, 0, 0, 0, 1]]), None)
    assert p.before_llm(tok) is None
    p.end_of_step(np.array([[0.6, 0, 0, 0, 0, 0, 1]]), None)       # T_r = 0.5 -> 8 of 16
    keep = p.before_llm(tok).tolist()
    assert len(keep) == 8 and {0, 1, 5, 9, 13} <= set(keep) and keep == sorted(keep)


def test_spatial_semantic_keep_breaks_exact_ties_by_position():
    """Equal AccuAttn everywhere: the top-up goes to the lowest positions (issue 11 item 14)."""
    from vlabench.pruners.sp_vla import spatial_semantic_keep

    accu = torch.full((10,), 0.25)
    priority = torch.zeros(10, dtype=torch.bool)
    priority[7] = True
    assert spatial_semantic_keep(accu, priority, 3).tolist() == [0, 1, 7]


def _edge_scene():
    p_img = np.zeros((56, 56, 3), np.uint8)
    p_img[:, 21:] = 255                                              # edges in patches 1, 5, 9, 13
    att = torch.full((1, 16, 16), 1 / 16)
    att[:, :, 0] += 0.01                                             # patch 0 most attended
    return VisualTokens(torch.zeros(16, 4), torch.zeros(16, 4), {"agentview": p_img},
                        {"agentview": att}, "task", 1)


@pytest.mark.parametrize("edges", [True, False])
def test_table2_without_canny_drops_the_edge_tokens_from_t_select(edges):
    """Table 2 "w/o Canny" (`edges=false`): T_select = T_se; at T_r = 0.25 (4 of 16) the four
    edge patches are kept only with edges, else the top-up follows AccuAttn (0 then lowest ids)."""
    p = SPVLA({"v_pmin": 0.2, "v_pmax": 1.0, "semantic_threshold": 0.5, "edges": edges})
    p.bind(model_info(grid=4, cameras=("agentview",)))
    p.end_of_step(np.array([[0.8, 0, 0, 0, 0, 0, 1]]), None)       # T_r = 0.25 -> 4 of 16
    keep = p.before_llm(_edge_scene()).tolist()
    assert keep == ([1, 5, 9, 13] if edges else [0, 1, 2, 3])


def test_table2_without_pruning_or_scheduling_switch_one_module_off():
    fast = np.array([[0.3, -0.3, 0.3, 0, 0, 0, 1]] * 8)
    no_prune = SPVLA({"prune": False, "v_pmin": 0.2, "v_pmax": 1.0})
    no_prune.bind(model_info(grid=4, cameras=("agentview",)))
    no_prune.end_of_step(fast, None)
    assert no_prune.before_llm(_edge_scene()) is None                  # every call keeps all tokens
    assert no_prune.skip_call(None) is not None                        # the scheduler still serves
    no_sched = SPVLA({"schedule": False, "v_pmin": 0.2, "v_pmax": 1.0, "semantic_threshold": 0.5})
    no_sched.bind(model_info(grid=4, cameras=("agentview",)))
    no_sched.end_of_step(fast, None)
    assert no_sched.skip_call(None) is None                            # every step calls the model
    assert no_sched.before_llm(_edge_scene()) is not None              # and prunes


def test_table2_ablation_configs_differ_from_sp_vla_in_one_setting():
    import yaml
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs" / "pruner"
    base = yaml.safe_load((root / "sp-vla.yaml").read_text())
    for name, key in (("no-pruning", "prune"), ("no-scheduling", "schedule"), ("no-canny", "edges")):
        cfg = yaml.safe_load((root / f"sp-vla-{name}.yaml").read_text())
        diff = {k for k in base if k not in ("name", "description") and cfg.get(k) != base[k]}
        assert diff == {key} and cfg[key] is False and base[key] is True
