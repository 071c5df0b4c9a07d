"""The FastVLM row of SP-VLA Table 1 (token-grid pooling, +R/+S) on hand-worked inputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.paper_pruner_views import model_info  # noqa: E402
from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import VisualTokens  # noqa: E402
from vlabench.pruners.fastvlm import FastVLM, pool_grid  # noqa: E402


def test_pool_grid_averages_blocks_anchored_at_their_top_left_patch():
    emb = torch.arange(16.0)[:, None]
    anchors, x = pool_grid(emb, 4, 2)
    assert anchors.tolist() == [0, 2, 8, 10]
    assert x.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]             # (0+1+4+5)/4, ...


def scene(edge: bool) -> VisualTokens:
    img = np.zeros((56, 56, 3), np.uint8)
    if edge:
        img[3:10, 17:25] = 255                                        # a square inside patch 1 only
    emb = torch.arange(16.0)[:, None].repeat(1, 2)
    return VisualTokens(emb, emb.clone(), {"agentview": img}, None, "task", 0)


def test_fastvlm_plus_r_plus_s_keeps_pooled_tokens_and_edge_patches():
    p = FastVLM({"pool": 2, "edge_tokens": True})
    p.bind(model_info(grid=4, cameras=("agentview",)))
    tok = scene(edge=True)
    assert p.before_llm(tok).tolist() == [0, 1, 2, 8, 10]
    assert tok.embeddings[[0, 1, 2]].tolist() == [[2.5, 2.5], [1.0, 1.0], [4.5, 4.5]]


def test_fastvlm_without_r_renumbers_and_a_grid_it_cannot_pool_is_refused():
    p = FastVLM({"pool": 2, "edge_tokens": False, "keep_positions": False})
    p.bind(model_info(grid=4, cameras=("agentview",)))
    tok = scene(edge=False)
    assert p.contiguous_positions and p.before_llm(tok).tolist() == [0, 1, 2, 3]
    assert tok.embeddings[:4, 0].tolist() == [2.5, 4.5, 10.5, 12.5]
    with pytest.raises(ConfigError, match="valid: a divisor of 4"):
        FastVLM({"pool": 3}).bind(model_info(grid=4))
