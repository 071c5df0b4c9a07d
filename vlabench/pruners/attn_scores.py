"""Reading a decoder layer's attention (`LayerView`) as scores over the alive visual tokens.

Shared by the attention-driven methods (SpecPrune-VLA, VLA-Pruner): which query rows count is
each method's choice (cited there); this module only slices and averages, vectorised.
"""

from __future__ import annotations

import torch

from vlabench.pruners.base import BOS, PROPRIO, TEXT, VISUAL, LayerView

PREFILL_KINDS = (BOS, VISUAL, PROPRIO, TEXT)   # the rows before OFT's action placeholders


def has_values(t: torch.Tensor | None) -> bool:
    """False for a missing tensor or one on the meta device (shape-only builds)."""
    return t is not None and t.device.type != "meta"


def visual_keys(view: LayerView) -> tuple[torch.Tensor, torch.Tensor]:
    """(column indices of the visual keys in `view.attn`, their visual ids)."""
    return view.visual_key_index, view.visual_key_ids


def rows_of_kinds(view: LayerView, kinds: tuple[int, ...]) -> torch.Tensor:
    """Boolean mask over the query rows whose kind is one of `kinds`."""
    return torch.isin(view.query_kinds, torch.tensor(kinds, device=view.query_kinds.device))


def last_row(view: LayerView) -> torch.Tensor:
    """Boolean mask over the query rows selecting only the last one (FastV's "last token")."""
    rows = torch.zeros_like(view.query_kinds, dtype=torch.bool)
    rows[-1] = True
    return rows


def visual_block(view: LayerView, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(visual ids, attention block (heads, n_rows, n_vis) from the rows `rows` (bool mask) to
    the alive visual keys); the block is None when the attention has no values (meta)."""
    cols, ids = visual_keys(view)
    if not has_values(view.attn):
        return ids, None
    a = view.attn
    r = torch.nonzero(rows.to(a.device)).flatten()
    return ids, take(take(a, 1, r), 2, cols.to(a.device)).float()


def take(x: torch.Tensor, dim: int, idx: torch.Tensor) -> torch.Tensor:
    """x indexed by the sorted indices `idx` along `dim`: a view when they are contiguous."""
    n = idx.numel()
    if n and int(idx[-1]) - int(idx[0]) + 1 == n:
        return x.narrow(dim, int(idx[0]), n)
    return x.index_select(dim, idx)


def query_to_visual(view: LayerView, rows: torch.Tensor,
                    per_head: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean attention from the query rows `rows` (bool mask) to each alive visual key.

    Returns (visual ids, scores): scores (n_vis,) averaged over heads and rows, or
    (heads, n_vis) with `per_head`; None when the attention has no values (meta device) and
    zeros when no row is selected."""
    ids, block = visual_block(view, rows)
    if block is None:
        return ids, None
    if block.shape[1] == 0:
        shape = (block.shape[0], block.shape[2]) if per_head else (block.shape[2],)
        return ids, torch.zeros(shape, dtype=torch.float32, device=block.device)
    per = block.mean(dim=1)
    return ids, (per if per_head else per.mean(dim=0))


def scatter_scores(ids: torch.Tensor, scores: torch.Tensor, total: int) -> torch.Tensor:
    """A (total,) float vector holding `scores` at `ids` and zeros elsewhere."""
    out = torch.zeros(total, dtype=torch.float32)
    out[ids.long().cpu()] = scores.float().cpu()
    return out
