"""HoloV: crops, the attention + similarity-variance score, proportional allocation, per-camera
selection before the LLM."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import VisualTokens  # noqa: E402
from vlabench.pruners.holov import (HoloV, allocate, block_crops, holov_order, holov_select,  # noqa: E402
                                   row_crops, token_scores)


def test_code_crops_are_contiguous_runs_and_paper_crops_square_blocks():
    assert [c.tolist() for c in row_crops(10, 4)] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert [c.tolist() for c in block_crops(4, 4)] == [[0, 1, 4, 5], [2, 3, 6, 7],
                                                       [8, 9, 12, 13], [10, 11, 14, 15]]
    with pytest.raises(ConfigError):
        block_crops(4, 8)


def test_token_score_adds_the_rescaled_similarity_variance():
    # cosines: s12 = 0, s13 = s23 = 1/sqrt2; diagonal masked to 0. Row means /2: (.354, .354, .707);
    # variances (sum over the 3 entries, diagonal included, /2): (.1875, .1875, .25)
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    a = torch.tensor([0.2, 0.1, 0.3])
    scale = 0.2 / ((0.1875 + 0.1875 + 0.25) / 3)            # mean |attn| / mean |var| = .96
    want = [0.2 + 0.09 * 0.1875 * scale, 0.1 + 0.09 * 0.1875 * scale, 0.3 + 0.09 * 0.25 * scale]
    assert token_scores(f, a, 0.09).tolist() == pytest.approx(want, abs=1e-5)


def test_allocation_floors_then_tops_up_the_heaviest_crops():
    assert allocate(torch.tensor([0.5, 0.3, 0.2]), 4).tolist() == [3, 1, 0]
    assert allocate(torch.full((4,), 0.25), 6).tolist() == [2, 2, 1, 1]     # ties: lower crop


def test_budget_follows_crop_scores_not_a_global_top_k():
    # three 2-token crops of identical features: a crop's score is 1.09 x its mean attention,
    # weights (.586, .216, .198); budget 3 -> floor (1, 0, 0), +1 to crops 0 and 1 -> (2, 1, 0).
    # A global top-3 by attention would take token 4 (.32) over token 2 (.30).
    attn = torch.tensor([0.5, 0.45, 0.3, 0.05, 0.32, 0.0])
    keep = holov_select(torch.ones(6, 2), attn, row_crops(6, 3), 3, 0.09)
    assert keep.tolist() == [0, 1, 2]


def _tokens(att: dict, emb: torch.Tensor | None = None) -> VisualTokens:
    emb = torch.ones(8, 2) if emb is None else emb
    return VisualTokens(emb, torch.zeros(emb.shape[0], 3), {}, att, "t", 0)


def test_each_camera_is_an_image_with_its_own_budget_and_ids_offset():
    # received attention = each row: camera a (.4, .1 | .3, .2) -> crops equal -> one each (0, 2);
    # camera b (.1, .2 | .3, .4) -> weights (.3, .7) -> floor (0, 1), +1 to crop 1 -> 2, 3 whole
    att = {"a": torch.tensor([0.4, 0.1, 0.3, 0.2]).expand(1, 4, 4),
           "b": torch.tensor([0.1, 0.2, 0.3, 0.4]).expand(1, 4, 4)}
    emb = torch.tensor([[1.0, 0], [1, 1], [2, 1], [1, 3], [3, 1], [1, 4], [5, 1], [1, 6]])
    p = HoloV({"retention": 0.5, "crops": 2})
    p.bind(info(num_visual=8, cameras=("a", "b"), grid=2))
    tok = _tokens(att, emb.clone())
    # code: each camera's sequence in its own first slots, renumbered (`contiguous_positions`)
    assert p.before_llm(tok).tolist() == [0, 1, 4, 5] and p.contiguous_positions
    assert torch.equal(tok.embeddings[[0, 1, 4, 5]], emb[[0, 2, 6, 7]])
    q = HoloV({"retention": 0.5, "crops": 1, "reading": "paper"})    # one crop: top 2 per camera
    q.bind(info(num_visual=8, cameras=("a", "b"), grid=2))
    tok = _tokens(att, emb.clone())
    assert q.before_llm(tok).tolist() == [0, 2, 6, 7] and torch.equal(tok.embeddings, emb)


def test_code_order_is_crop_by_crop_whole_crops_in_image_order_others_by_attention():
    # crops [0, 1, 2], [3, 4, 5], [6, 7, 8]; equal features: crop score 1.09 x mean attention,
    # weights (.643, .321, .036); budget 6 -> floor (3, 1, 0), +1 to crops 0 and 1 -> (4, 2, 0):
    # crop 0 whole (image order, not by attention; one slot unused), crop 1 its top 2: 5 (.5), 4 (.3)
    attn = torch.tensor([0.5, 0.7, 0.6, 0.1, 0.3, 0.5, 0.1, 0.0, 0.0])
    crops = row_crops(9, 3)
    assert holov_order(torch.ones(9, 2), attn, crops, 6, 0.09).tolist() == [0, 1, 2, 5, 4]
    assert holov_select(torch.ones(9, 2), attn, crops, 6, 0.09).tolist() == [0, 1, 2, 4, 5]
    p = HoloV({"retention": 2 / 3, "crops": 3})
    p.bind(info(num_visual=9, grid=3))
    emb = torch.arange(1.0, 19.0).reshape(9, 2)
    tok = _tokens({"agentview": attn.expand(1, 9, 9)}, emb.clone())
    assert p.before_llm(tok).tolist() == list(range(6))          # the budget's length
    want = torch.cat([emb[[0, 1, 2, 5, 4]], torch.zeros(1, 2)])  # zero vector: the code's padding
    assert torch.equal(tok.embeddings[:6], want) and torch.equal(tok.embeddings[6:], emb[6:])


@pytest.mark.parametrize("reading", ["code", "paper"])
def test_an_allocation_beyond_a_crop_pads_zero_vectors_in_code_and_keeps_fewer_in_paper(reading):
    # 9 one-token crops (both readings): weights (.45, .45, 0, ..., .1); budget 6 -> floor
    # (2, 2, 0, ..., 0), +1 to crops 0 and 1: each keeps its only token, crop 8 gets none
    attn = torch.tensor([0.9, 0.9, 0, 0, 0, 0, 0, 0, 0.2])
    p = HoloV({"retention": 2 / 3, "crops": 9, "reading": reading})
    p.bind(info(num_visual=9, grid=3))
    emb = torch.arange(1.0, 19.0).reshape(9, 2)
    tok = _tokens({"agentview": attn.expand(1, 9, 9)}, emb.clone())
    keep = p.before_llm(tok).tolist()
    if reading == "paper":
        assert keep == [0, 1] and torch.equal(tok.embeddings, emb)
    else:
        assert keep == list(range(6))
        assert torch.equal(tok.embeddings[:6], torch.cat([emb[:2], torch.zeros(4, 2)]))


def test_full_retention_keeps_all_meta_counts_and_paper_keeps_positions():
    p = HoloV({"retention": 1.0})
    p.bind(info(num_visual=4, grid=2))
    assert p.before_llm(_tokens(None)) is None
    p = HoloV({"retention": 0.5})
    p.bind(info(num_visual=8, cameras=("a", "b"), grid=2))
    meta = VisualTokens(torch.zeros(8, 2, device="meta"), torch.zeros(8, 3), {}, None, "t", 0)
    out = p.before_llm(meta)
    assert out.device.type == "meta" and out.numel() == 4
    q = HoloV({"reading": "paper", "crops": 4})
    q.bind(info(num_visual=16, grid=4))
    assert not q.contiguous_positions and q.crops[0].tolist() == [0, 1, 4, 5]
    assert math.isclose(HoloV({}).alpha, 0.09)


def test_a_model_without_a_patch_grid_per_camera_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="patch grid per camera"):
        HoloV({}).bind(info(num_visual=6, grid=2))
