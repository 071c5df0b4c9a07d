"""FoPru (SP-VLA Table 1 "FoPru + R") on hand-worked inputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.paper_pruner_views import model_info  # noqa: E402
from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import VisualTokens  # noqa: E402
from vlabench.pruners.fopru import FoPru, rank_keep, row_keep  # noqa: E402


def tokens(scores: list[float], grid: int = 4) -> VisualTokens:
    """One image whose patch j receives attention proportional to scores[j] from every query."""
    p = grid * grid
    s = torch.tensor(scores, dtype=torch.float32)
    att = (s / s.sum()).expand(1, p, p).clone()
    emb = torch.arange(p * 3, dtype=torch.float32).reshape(p, 3)
    return VisualTokens(emb, emb.clone(), {"agentview": np.zeros((56, 56, 3), np.uint8)},
                        {"agentview": att}, "task", 0)


def test_rank_strategy_keeps_the_top_scores_in_original_order_ties_to_the_lowest_id():
    s = torch.tensor([0.1, 0.9, 0.5, 0.5, 0.7])
    assert rank_keep(s, 3).tolist() == [1, 2, 4]
    assert rank_keep(s, 4).tolist() == [1, 2, 3, 4]


def test_row_strategy_keeps_an_equal_share_of_every_grid_row():
    s = torch.tensor([1, 5, 2, 0, 9, 1, 1, 8, 0, 0, 3, 0, 4, 0, 0, 1], dtype=torch.float32)
    # k = 6 on a 4x4 grid: rows 0 and 1 keep 2 each, rows 2 and 3 keep 1 each
    assert row_keep(s, 4, 6).tolist() == [1, 2, 4, 7, 10, 12]


def test_fopru_keeps_the_most_attended_patches_at_their_positions():
    p = FoPru({"retention": 0.25})
    p.bind(model_info(grid=4, cameras=("agentview",)))
    scores = [1.0] * 16
    for j, v in ((3, 5.0), (6, 4.0), (9, 3.0), (15, 2.0)):
        scores[j] = v
    tok = tokens(scores)
    before = tok.embeddings.clone()
    assert p.before_llm(tok).tolist() == [3, 6, 9, 15]
    assert torch.equal(tok.embeddings, before) and not p.contiguous_positions
    assert FoPru({"keep_positions": False}).contiguous_positions       # FoPru's own run


def test_fopru_keeps_everything_at_full_retention_and_refuses_unknown_strategies():
    p = FoPru({"retention": 1.0})
    p.bind(model_info(grid=4, cameras=("agentview",)))
    assert p.before_llm(tokens([1.0] * 16)) is None
    with pytest.raises(ConfigError, match="valid: rank, row"):
        FoPru({"strategy": "diagonal"})
