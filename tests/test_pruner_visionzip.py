"""VisionZip (SP-VLA Table 1 "VisionZip + R + S") on hand-worked inputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.paper_pruner_views import model_info  # noqa: E402
from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import VisualTokens  # noqa: E402
from vlabench.pruners.visionzip import VisionZip, contextual_merge  # noqa: E402

# six 2-d tokens; keys: 2 points like 1, 4 and 5 like 3
X = torch.tensor([[9.0, 9.0], [1.0, 0.0], [3.0, 0.1], [0.0, 1.0], [0.2, 4.0], [0.0, 6.0]])


def test_contextual_targets_are_every_step_th_rest_token_and_absorb_their_nearest():
    targets, ctx = contextual_merge(X, X, torch.tensor([1, 2, 3, 4, 5]), contextual=2)
    assert targets.tolist() == [1, 3]                                 # step 5 // 2 = 2: rest[0], rest[2]
    assert torch.allclose(ctx, torch.tensor([[1.0 + 3.0, 0.1], [0.1, 1.0 + 5.0]]))   # x1 + x2; x3 + mean(x4, x5)


def scene(edges: bool = False) -> VisualTokens:
    a = torch.tensor([5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])[:4]
    att = (a / a.sum()).expand(1, 4, 4).clone()
    img = np.zeros((28, 28, 3), np.uint8)
    if edges:
        img[16:24, 17:25] = 255                                       # a square inside patch 3
    emb = X[[0, 1, 3, 2]].clone()                                     # patch 0 dominant
    return VisualTokens(emb, emb.clone(), {"agentview": img}, {"agentview": att}, "task", 0)


def test_visionzip_with_r_and_s_keeps_dominant_contextual_and_edge_patches_in_place():
    p = VisionZip({"dominant": 1, "contextual": 1, "edge_tokens": False})
    p.bind(model_info(grid=2, cameras=("agentview",)))
    tok = scene()
    assert p.before_llm(tok).tolist() == [0, 1]                        # dominant 0, target 1
    assert tok.embeddings[1].tolist() == pytest.approx((X[1] + (X[3] + X[2]) / 2).tolist())
    s = VisionZip({"dominant": 1, "contextual": 1, "edge_tokens": True})
    s.bind(model_info(grid=2, cameras=("agentview",)))
    tok = scene(edges=True)
    assert s.before_llm(tok).tolist() == [0, 1, 3]                     # + the edge patch, own embedding
    assert tok.embeddings[3].tolist() == X[2].tolist()


def test_visionzip_own_order_is_dominant_then_contextual_renumbered():
    p = VisionZip({"dominant": 1, "contextual": 1, "edge_tokens": False, "keep_positions": False})
    p.bind(model_info(grid=2, cameras=("agentview",)))
    tok = scene()
    assert p.contiguous_positions and p.before_llm(tok).tolist() == [0, 1]
    assert tok.embeddings[0].tolist() == X[0].tolist()


def test_visionzip_settings():
    with pytest.raises(ConfigError, match="at least one token"):
        VisionZip({"dominant": 0, "contextual": 0})
    p = VisionZip({"dominant": 4, "contextual": 0, "edge_tokens": False})
    p.bind(model_info(grid=2, cameras=("agentview",)))
    assert p.before_llm(scene()) is None                              # keeps all 4: unchanged
