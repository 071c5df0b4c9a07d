"""Hand-made LayerViews and ModelInfos for the baseline pruners' unit tests (no model)."""

from __future__ import annotations

import dataclasses

import torch

from vlabench.pruners.base import VISUAL, LayerView, ModelInfo


def info(num_visual: int = 4, num_layers: int = 4, cameras: tuple[str, ...] = ("agentview",),
         grid: int = 2) -> ModelInfo:
    return ModelInfo(name="test", num_layers=num_layers, hidden_size=2, num_heads=2,
                     cameras=cameras, grid=grid, num_visual=num_visual, action_dim=7, chunk=1,
                     autoregressive=False)


def view(layer: int, kinds: list[int], attn: torch.Tensor | None = None,
         hidden: torch.Tensor | None = None, phase: str = "prefill") -> LayerView:
    """A prefill view where the keys are the queries: visual ids numbered in sequence order."""
    k = torch.tensor(kinds)
    is_vis = k == VISUAL
    vid = torch.full((len(kinds),), -1, dtype=torch.long)
    vid[is_vis] = torch.arange(int(is_vis.sum()))
    pos = torch.arange(len(kinds))
    if hidden is None:
        hidden = torch.zeros(len(kinds), 2)
    fields = {f.name for f in dataclasses.fields(LayerView)}
    extra = {}
    if "visual_key_index" in fields:
        extra = {"visual_key_index": torch.nonzero(is_vis).flatten(), "visual_key_ids": vid[is_vis]}
    return LayerView(layer, phase, hidden, attn, k, pos, vid, k, pos, vid, **extra)
