"""DivPrune on a hand-worked point set (Algorithm 1 with the official first-token rule)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from vlabench.pruners.base import BOS, TEXT, VISUAL, Pruner, VisualTokens  # noqa: E402
from vlabench.pruners.divprune import DivPrune, divprune_select  # noqa: E402
from vlabench.pruners.selection import first_by_nearest_other  # noqa: E402
from vlabench.pruners.selection import cosine_distance_matrix  # noqa: E402

DEG = [0, 20, 90, 100, 180, 185]


def points() -> torch.Tensor:
    return torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in DEG])


def tokens(emb: torch.Tensor) -> VisualTokens:
    return VisualTokens(emb, emb, {}, None, "task", 0)


def test_first_token_has_the_farthest_nearest_neighbour():
    # nearest-other distances: 0/20 deg -> 1-cos20 = .060 (largest; tie -> lowest index),
    # 90/100 -> .015, 180/185 -> .004
    assert first_by_nearest_other(cosine_distance_matrix(points())) == 0


def test_greedy_maxmin_picks_opposite_then_orthogonal():
    # from 0 deg: farthest is 180 deg (index 4); then min distances to {0, 180}:
    # 20 -> .06, 90 -> 1.0, 100 -> 1 - cos80 = .83, 185 -> .004  => 90 deg (index 2)
    assert divprune_select(points(), 3).tolist() == [0, 4, 2]


def test_plugin_keeps_the_budget_sorted_and_handles_meta():
    p = DivPrune({"retention": 0.5})
    assert p.before_llm(tokens(points())).tolist() == [0, 2, 4]
    out = p.before_llm(tokens(torch.empty(6, 2, device="meta")))
    assert out.device.type == "meta" and out.numel() == 3
    assert DivPrune({"retention": 1.0}).before_llm(tokens(points())) is None


def test_code_reading_renumbers_positions_and_paper_keeps_them():
    assert DivPrune({}).contiguous_positions                       # default reading: code
    assert not DivPrune({"reading": "paper"}).contiguous_positions
    assert [r.default for r in DivPrune.readings] == ["code"]


class _Keep(Pruner):
    """Keeps visual ids 1, 4, 6 before the LLM, with or without renumbered positions."""

    def __init__(self, contiguous: bool):
        super().__init__()
        self.contiguous_positions = contiguous

    def before_llm(self, tokens):
        return torch.tensor([1, 4, 6])


def _decoder(pruner: Pruner):
    from vlabench.models.build import build_openvla

    pol = build_openvla({"size": "tiny", "threads": 2, "warmup_calls": 0}, pruner, device="cpu")
    return pol.decoder, pol.dims.llm_hidden


def test_renumbered_prefill_and_decode_equal_the_shortened_sequence_run_unpruned():
    """A kept sequence renumbered 0..n'-1 behaves exactly as if only the kept tokens had been
    given, at positions 0..n'-1 (DivPrune's code: position_ids=None); decoding continues at n'."""
    dec, d = _decoder(_Keep(True))
    g = torch.Generator().manual_seed(0)
    emb, new = torch.randn(1, 12, d, generator=g), torch.randn(1, 1, d, generator=g)
    kinds = torch.tensor([BOS] + [VISUAL] * 8 + [TEXT] * 3)
    vids = torch.tensor([-1] + list(range(8)) + [-1] * 3)
    rows = [0, 2, 5, 7, 9, 10, 11]                                  # BOS, ids 1/4/6, text
    with torch.inference_mode():
        h, meta = dec.prefill(emb, kinds, vids, keep=torch.tensor([1, 4, 6]))
        step = dec.decode(new, 12)                                   # original position 12
        assert meta.pos.tolist() == list(range(7))
        dec.pruner = Pruner()
        ref_h, ref_meta = dec.prefill(emb[:, rows], kinds[rows], vids[rows])
        ref_step = dec.decode(new, 7)                                # n' = 7
    assert torch.allclose(h, ref_h, atol=1e-6) and torch.allclose(step, ref_step, atol=1e-6)


def test_original_positions_differ_from_renumbered_ones():
    """Paper reading: the kept tokens keep their gapped original positions (the rotary phases
    differ, so the hidden states do too)."""
    dec, d = _decoder(_Keep(False))
    emb = torch.randn(1, 12, d, generator=torch.Generator().manual_seed(1))
    kinds = torch.tensor([BOS] + [VISUAL] * 8 + [TEXT] * 3)
    vids = torch.tensor([-1] + list(range(8)) + [-1] * 3)
    with torch.inference_mode():
        h, meta = dec.prefill(emb, kinds, vids, keep=torch.tensor([1, 4, 6]))
        assert meta.pos.tolist() == [0, 2, 5, 7, 9, 10, 11]
        dec.pruner = _Keep(True)
        h2, _ = dec.prefill(emb, kinds, vids, keep=torch.tensor([1, 4, 6]))
    assert not torch.allclose(h, h2, atol=1e-4)
