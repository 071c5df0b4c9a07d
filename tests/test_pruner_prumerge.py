"""PruMerge (SP-VLA Table 1 "PruMerge + R") on hand-worked inputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.paper_pruner_views import model_info  # noqa: E402
from vlabench.pruners.base import VisualTokens  # noqa: E402
from vlabench.pruners.prumerge import (PruMerge, fixed_count, iqr_outlier_ratio,  # noqa: E402
                                       prumerge_tokens, spatial_samples)

X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
A = torch.tensor([0.4, 0.3, 0.2, 0.1])


def test_iqr_outliers_and_prumerge_plus_samples():
    assert iqr_outlier_ratio(torch.tensor([1.0] * 7 + [10.0])) == pytest.approx(1 / 8)
    assert iqr_outlier_ratio(torch.arange(8.0)) == 0.0
    assert spatial_samples(1 / 8, 576)[:3].tolist() == [0, 2, 4]       # step int(8 / 3) = 2
    assert spatial_samples(1 / 8, 576)[-1].item() == 574


def test_merge_adds_the_attention_weighted_nearest_keys_and_one_extra_token():
    merged, extra = prumerge_tokens(X, X, A, torch.tensor([0, 1]), neighbours=1)
    # token 0's nearest other key is token 2 (cosine 1): 1 + 0.2 * 2; token 1's is token 3: 1 + 0.1 * 2
    assert torch.allclose(merged, torch.tensor([[1.4, 0.0], [0.0, 1.2]]))
    assert extra.tolist() == pytest.approx([0.4, 0.2])                  # 0.2 x2 + 0.1 x3


def scene(a: torch.Tensor = A) -> VisualTokens:
    att = (a / a.sum()).expand(1, 4, 4).clone()
    return VisualTokens(X.clone(), X.clone(), {"agentview": np.zeros((28, 28, 3), np.uint8)},
                        {"agentview": att}, "task", 0)


def test_with_r_merged_tokens_stay_at_their_patches_and_the_extra_takes_the_last_free_one():
    p = PruMerge({"retention": 0.5, "neighbours": 1})
    p.bind(model_info(grid=2, cameras=("agentview",)))
    tok = scene()
    assert p.before_llm(tok).tolist() == [0, 1, 3]
    assert torch.allclose(tok.embeddings[[0, 1, 3]], torch.tensor([[1.4, 0.0], [0.0, 1.2], [0.4, 0.2]]))


def test_without_r_the_code_order_fills_the_first_slots_renumbered():
    p = PruMerge({"retention": 0.5, "neighbours": 1, "keep_positions": False})
    p.bind(model_info(grid=2, cameras=("agentview",)))
    tok = scene(torch.tensor([0.3, 0.4, 0.2, 0.1]))                   # token 1 ranks first
    assert p.contiguous_positions and p.before_llm(tok).tolist() == [0, 1, 2]
    # by descending attention: token 1 (+ 0.1 x3), token 0 (+ 0.2 x2), then the extra token
    assert torch.allclose(tok.embeddings[:3], torch.tensor([[0.0, 1.2], [1.4, 0.0], [0.4, 0.2]]))


def test_full_retention_is_the_identity():
    p = PruMerge({"retention": 1.0})
    p.bind(model_info(grid=2, cameras=("agentview",)))
    tok = scene()
    assert p.before_llm(tok) is None and torch.equal(tok.embeddings, X)


def test_the_fixed_count_floors_n_times_the_ratio_as_the_code():
    # 42Shawn/LLaVA-PruMerge @ 1ca8b2b clip_encoder.py L116: torch.topk(cls_attn, int(N*ratio))
    assert fixed_count(256, 0.664) == 169 and fixed_count(256, 0.665) == 170   # 169.98 / 170.24
    p = PruMerge({})
    assert p.retention == 0.665 and p.budget(256) == 171          # Table 1's mapping: 170 + 1
    assert PruMerge({"retention": 0.664}).budget(256) == 170        # shape-only builds floor too
    q = PruMerge({"retention": 0.7, "neighbours": 1})               # 4 x .7 = 2.8 -> 2 (+ 1 extra)
    q.bind(model_info(grid=2, cameras=("agentview",)))
    assert q.before_llm(scene()).tolist() == [0, 1, 3]
