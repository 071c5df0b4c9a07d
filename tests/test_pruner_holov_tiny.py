"""HoloV on the tiny real-valued OpenVLA with peaked encoder attention (one image row holds all of
it): the code reading feeds the LLM its sequence of the budget's length (crop 0's 16 tokens in
image order, then zero vectors) at positions 0..n'-1, as obananas/HoloV @ 1d2e65e
llava/model/utils.py L114-146 and llava_arch.py L239 do; the paper reading keeps fewer tokens at
their original positions."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import vlabench.pruners.holov as holov  # noqa: E402
from vlabench.models.build import build_openvla  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402

M = 256


class _Capture(holov.HoloV):
    def before_llm(self, tokens):
        self.original = tokens.embeddings.detach().clone()
        return super().before_llm(tokens)


def _peaked(probs: torch.Tensor) -> torch.Tensor:
    a = torch.zeros(probs.shape[-1])
    a[:16] = 1.0                                  # image row 0 = code crop 0 = top of paper blocks 0-3
    return a


def _run(reading: str, monkeypatch):
    monkeypatch.setattr(holov, "received_attention", _peaked)
    p = _Capture({"retention": 0.5, "reading": reading})
    policy = build_openvla({"size": "tiny", "threads": 2, "warmup_calls": 0}, pruner=p, device="cpu")
    seen = {}
    prefill = policy.decoder.prefill

    def recording(embeds, kinds, vids, **kw):
        h, meta = prefill(embeds, kinds, vids, **kw)
        seen.update(x=embeds[0].detach().clone(), pos=meta.pos.clone(), n=embeds.shape[1])
        return h, meta

    policy.decoder.prefill = recording
    p.reset()
    out = policy.act(synthetic_observation(0))
    return p, policy, out, seen


def test_code_reading_feeds_the_llm_the_budget_with_zero_vector_padding(monkeypatch):
    p, policy, out, seen = _run("code", monkeypatch)
    x, orig = seen["x"], p.original
    assert torch.equal(x[1:17], orig[:16])                     # crop 0 whole, image order
    assert not x[17:129].any() and orig[16:].abs().sum() > 0     # 112 zero vectors, not patches
    n_kept = seen["n"] - M + 128
    assert torch.equal(seen["pos"], torch.arange(n_kept))        # renumbered 0..n'-1
    layers = len(policy.decoder.trace.prefill)
    assert out.stats.tokens_by_layer == [128] * layers           # the padding is computed
    assert policy.decoder.trace.prefill[0].n_q == n_kept


def test_paper_reading_keeps_the_whole_blocks_only_at_their_positions(monkeypatch):
    p, policy, out, seen = _run("paper", monkeypatch)
    # 4x4 blocks: blocks 0-3 share the attention (.25 each): 32 each >= 16 -> kept whole
    want = torch.tensor([r * 16 + c for r in range(4) for c in range(16)])
    n = seen["n"]
    assert torch.equal(seen["pos"], torch.cat([torch.tensor([0]), 1 + want, torch.arange(1 + M, n)]))
    assert torch.equal(seen["x"][1:1 + M], p.original)            # nothing written
    assert out.stats.tokens_by_layer == [64] * len(policy.decoder.trace.prefill)
