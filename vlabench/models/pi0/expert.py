"""pi0's action expert: flow matching over the (possibly pruned) prefix KV.

Per call (lerobot 0.4.4 `PI0Pytorch.sample_actions` / `denoise_step` / `embed_suffix`, ports of
openpi `pi0_pytorch.py`): x_1 = Gaussian noise (chunk x max_action_dim); for step s = 0..9,
t = 1 - s/10: the suffix = [state_proj(state); MLP_out(silu(MLP_in([action_in_proj(x_t);
sincos(t)])))] (1 + chunk tokens of the expert's width), run through the expert's layers, where
expert layer i attends to the prefix keys/values of prefix layer i (the pruned prefix's, as
`PrunableDecoder` left them) and to the suffix; the state token sees the prefix and itself, the
action tokens see the prefix, the state and each other (openpi's att_mask [1, 1, 0, ...]).
Suffix positions continue after the prefix (its alive tokens' last position + 1). Then
v_t = action_out_proj(final_norm(h)[-chunk:]) and x_{t+dt} = x_t + dt v_t with dt = -1/10.
The expert's Gemma does not scale its inputs by sqrt(width) (openpi's patched GemmaModel,
`transformers_replace/models/gemma/modeling_gemma.py`, removes the normalizer).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from vlabench.core.pruning import ACTION, PROPRIO, Pruner
from vlabench.models.decoder import _KV, LayerTrace, _view, hook_stage
from vlabench.models.lanes import attend_lanes
from vlabench.models.pi0.dims import Pi0Dims


def sincos_time(t: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """openpi `create_sinusoidal_pos_embedding` (float64, then the time's dtype): (B, dim)."""
    dtype = torch.float64 if t.device.type != "mps" else torch.float32
    frac = torch.linspace(0.0, 1.0, dim // 2, dtype=dtype, device=t.device)
    period = min_period * (max_period / min_period) ** frac
    x = (1.0 / period * 2 * math.pi)[None, :] * t[:, None]
    return torch.cat([torch.sin(x), torch.cos(x)], dim=1).to(t.dtype)


def suffix_mask(n: int, device: torch.device) -> torch.Tensor:
    """(n, n) bool: suffix row j may see suffix column k (openpi att_mask [1, 1, 0, ...])."""
    block = torch.tensor([1] + [2] * (n - 1), device=device)
    return block[None, :] <= block[:, None]


class FlowExpert:
    """One lane of the expert's flow-matching loop against a `PrunableDecoder`'s prefix caches:
    its pruner, clock and traces; `sample_batch` integrates the lanes of a call."""

    def __init__(self, model, dims: Pi0Dims, pruner: Pruner, clock=None, hook_context=None):
        self.model = model
        self.dims = dims
        self.pruner = pruner
        self.clock = clock
        self.hook_context = hook_context   # batched calls: the lane's RNG around pruner hooks
        self.traces: list[list[LayerTrace]] = []

    def _pruner_stage(self):
        return hook_stage(self.clock, self.hook_context)

    def suffix_embeds(self, state: torch.Tensor, x_t: torch.Tensor, t: float) -> torch.Tensor:
        m = self.model
        d = self.dims
        dtype = m.action_in_proj.weight.dtype
        tt = torch.full((x_t.shape[0],), t, dtype=torch.float32, device=x_t.device)
        temb = sincos_time(tt, d.expert_hidden, d.min_period, d.max_period).to(dtype)
        act = m.action_in_proj(x_t.to(dtype))
        h = torch.cat([act, temb[:, None, :].expand_as(act)], dim=2)
        h = m.action_time_mlp_out(F.silu(m.action_time_mlp_in(h)))
        return torch.cat([m.state_proj(state.to(dtype))[:, None, :], h], dim=1)


def sample_batch(experts: list[FlowExpert], caches: list[list[_KV | None]], starts: list[int],
                 state: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`FlowExpert.sample` of B lanes at once: `state` (B, max_state_dim), `noise` (B, chunk,
    max_action_dim) -> x_0 (B, chunk, max_action_dim); lane b attends to `caches[b]`."""
    first = experts[0]
    d = first.dims
    steps = d.flow_steps
    dt = -1.0 / steps
    x = noise.float()
    n = 1 + d.chunk
    metas, masks = [], []
    for e, c, start in zip(experts, caches, starts):
        e.traces = []
        meta_dev = c[0].pos.device if c and c[0] is not None else torch.device("cpu")
        metas.append(_KV(noise.new_zeros(0), noise.new_zeros(0),
                         torch.arange(start, start + n, device=meta_dev),
                         torch.tensor([PROPRIO] + [ACTION] * (n - 1), device=meta_dev),
                         torch.full((n,), -1, device=meta_dev)))
        masks.append(_masks(c, n, noise.device))
    for s in range(steps):
        v = _velocity(experts, caches, metas, masks, state, x, 1.0 + s * dt, s)
        x = x + dt * v
    return x


def _masks(caches: list[_KV | None], n: int, device: torch.device) -> list[torch.Tensor]:
    """Per expert layer, the (1, 1, n, n_prefix + n) bool mask of the suffix queries: every
    alive prefix key, then `suffix_mask`. Built once per call on the model's device (the
    prefix length per layer is fixed for the call's 10 steps)."""
    own = suffix_mask(n, device)
    by_len: dict[int, torch.Tensor] = {}
    out = []
    for c in caches:
        k = 0 if c is None else c.pos.numel()
        if k not in by_len:
            by_len[k] = torch.cat([torch.ones(n, k, dtype=torch.bool, device=device), own], 1)[None, None]
        out.append(by_len[k])
    return out


def _velocity(experts: list[FlowExpert], caches: list[list[_KV | None]], metas: list[_KV],
              masks: list[list[torch.Tensor]], state: torch.Tensor, x_t: torch.Tensor, t: float,
              step: int) -> torch.Tensor:
    """v_t of every lane (B, chunk, max_action_dim), float32."""
    first = experts[0]
    model = first.model
    expert = model.expert
    h = first.suffix_embeds(state, x_t, t)
    hs = list(h.split(1, 0))
    traces: list[list[LayerTrace]] = [[] for _ in experts]
    for i, layer in enumerate(expert.layers):
        probing = [i in e.pruner.flow_attention_layers and step >= e.pruner.first_flow_step
                   for e in experts]
        outs = attend_lanes(layer, expert.rotary_emb, hs, metas, [c[i] for c in caches],
                            [m[i] for m in masks], probing, [False] * len(hs))
        for b, (e, out) in enumerate(zip(experts, outs)):
            hs[b] = out.h
            traces[b].append(out.trace)
            if probing[b]:
                view = _view(i, "flow", out.h, out.probs, metas[b], out.keys, flow_step=step)
                with e._pruner_stage():
                    if e.pruner.after_layer(view) is not None:
                        raise RuntimeError("after_layer may not prune in the action expert")
    for e, tr in zip(experts, traces):
        e.traces.append(tr)
    out = expert.norm(torch.cat(hs, 0))[:, -first.dims.chunk:]
    return model.action_out_proj(out.to(model.action_out_proj.weight.dtype)).float()

