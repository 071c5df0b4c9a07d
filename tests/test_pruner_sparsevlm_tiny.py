"""SparseVLM on the tiny real-valued OpenVLA: the text raters and the kept set equal VLA-Pruner's
formula (MINT-SJTU/VLA-Pruner @ fa5bfed src/openvla/transformers/src/transformers/models/llama/
modeling_llama.py L1046-1056 raters from `inputs_embeds`, L1074-1097 layer 2's rater rows, top
round(M r)), recomputed here from the decoder's input and layer 2's attention."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vlabench.models.build import build_openvla  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.sparsevlm import SparseVLM  # noqa: E402

M = 256            # OpenVLA's visual tokens, at positions 1..256 after BOS


class _Capture(SparseVLM):
    def after_layer(self, view):
        keep = super().after_layer(view)
        if view.phase == "prefill" and view.layer == 2:
            self.h2, self.attn2, self.pos2, self.kept = (view.hidden.clone(), view.attn.clone(),
                                                         view.query_positions.clone(), keep)
        return keep


def _raters(x: torch.Tensor) -> list[int]:
    """The reference's raters from (n, d) rows at positions 0..n-1: H_v = rows 1..M, H_q = rows
    [M + 2, n - 1), r = softmax(H_v H_q^T, 1).mean(0), raters r >= mean(r)."""
    n = x.shape[0]
    start, end = M + 2, max(M + 2, n - 1)
    r = torch.softmax(x[1:1 + M].float() @ x[start:end].float().T, 1).mean(0)
    return (torch.nonzero(r >= r.mean()).flatten() + start).tolist()


def test_raters_and_kept_set_equal_the_reference_formula_on_the_input_embeddings():
    p = _Capture({"retention": 0.5})
    policy = build_openvla({"size": "tiny", "threads": 2, "warmup_calls": 0}, pruner=p, device="cpu")
    seen = {}
    prefill = policy.decoder.prefill

    def recording(embeds, kinds, vids, **kw):
        seen["x"] = embeds[0].detach().clone()
        return prefill(embeds, kinds, vids, **kw)

    policy.decoder.prefill = recording
    p.reset()
    policy.act(synthetic_observation(0))
    want = _raters(seen["x"])
    assert want and sorted(p.raters.tolist()) == want
    att = p.attn2.mean(0)                                   # (n, n): nothing pruned before layer 3
    top = att[want].mean(0)[1:1 + M].topk(round(M * 0.5)).indices
    assert p.kept.tolist() == sorted(top.tolist())
    # the scoring layer's output rates other tokens on this input (what the test tells apart)
    assert torch.equal(p.pos2, torch.arange(seen["x"].shape[0]))
    assert _raters(p.h2) != want
