"""Hand-built LayerViews and ModelInfos for the SpecPrune / VLA-Pruner / SP-VLA unit tests."""

from __future__ import annotations

import torch

from vlabench.pruners.base import BOS, VISUAL, LayerView, ModelInfo


def model_info(num_layers: int = 4, cameras: tuple[str, ...] = ("agentview", "wrist"),
               grid: int = 2, autoregressive: bool = False) -> ModelInfo:
    return ModelInfo(name="toy", num_layers=num_layers, hidden_size=8, num_heads=1,
                     cameras=cameras, grid=grid, num_visual=len(cameras) * grid * grid,
                     action_dim=7, chunk=8, autoregressive=autoregressive)


def view(layer: int, visual_ids: list[int], tail_kinds: list[int],
         rows: dict[int, dict[int, float]] | None = None, phase: str = "prefill") -> LayerView:
    """BOS + the alive visual tokens + `tail_kinds`; query row r (sequence index) attends with
    the weights rows[r] = {visual id: weight}, the rest of the row a small uniform floor."""
    kinds = [BOS] + [VISUAL] * len(visual_ids) + tail_kinds
    vids = [-1] + visual_ids + [-1] * len(tail_kinds)
    n = len(kinds)
    attn = torch.full((1, n, n), 1e-3)
    for r, weights in (rows or {}).items():
        for vid, w in weights.items():
            attn[0, r, 1 + visual_ids.index(vid)] = w
    attn = attn / attn.sum(-1, keepdim=True)
    k, v = torch.tensor(kinds), torch.tensor(vids)
    pos = torch.arange(n)
    cols = torch.nonzero(v >= 0).flatten()
    return LayerView(layer, phase, torch.zeros(n, 8), attn, k, pos, v, k, pos, v, cols, v[cols])
