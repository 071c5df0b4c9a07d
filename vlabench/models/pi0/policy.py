"""The pi0 adapter: the OpenVLA family's metering, hooks and records on pi0's two-stage model.

One call (`act`, inherited): pruner.skip_call -> "vision" (SigLIP + projector on agentview and
wrist, 256 tokens each) -> pruner.before_llm / reuse_kv -> "llm": the PaliGemma prefix
[512 image tokens, prompt tokens x sqrt(width)] through Gemma 2B with full bidirectional
attention (openpi's prefix att_mask is all 0) on `PrunableDecoder`, whose `after_layer` hooks
prune visual tokens at layer K -> "action_head": the action expert's 10 flow-matching steps on
the pruned prefix KV (`expert.py`) -> the first 5 of the 50 actions (App. B.4: chunk 50,
execute 5; openpi `examples/libero/main.py` replan_steps = 5). Input mapping: `inputs.py`.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from vlabench.core.contracts import Observation
from vlabench.core.errors import ConfigError
from vlabench.core.pruning import BOS, TEXT, VISUAL, Pruner
from vlabench.metrics.latency import StageClock
from vlabench.models.decoder import PrunableDecoder, prefill_lanes
from vlabench.models.pi0 import flops as P
from vlabench.models.pi0.expert import FlowExpert, sample_batch
from vlabench.models.pi0.inputs import image_tensor, normalize, pad_to, unnormalize
from vlabench.models.policy import PrismaticPolicy, lane_context
from vlabench.models.preprocess import oft_proprio

# Pruners whose mechanism applies to pi0 (VLA-Pruner App. B.4, Table 4), and why others do not.
SUPPORTED_PRUNERS = ("none", "random", "fastv", "sparsevlm", "divprune", "vla-cache", "vla-pruner")
LIBERO_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")


def check_pruner(pruner: Pruner | None) -> None:
    name = getattr(pruner, "name", "none") if pruner is not None else "none"
    if name not in SUPPORTED_PRUNERS:
        raise ConfigError(f"pruner={name} has no pi0 implementation (its mechanism is specific to "
                          f"the OpenVLA family); pi0 runs: {', '.join(SUPPORTED_PRUNERS)}")


class Pi0Policy(PrismaticPolicy):
    cameras = ("agentview", "wrist")
    model_name = "pi0"
    autoregressive = False
    causal = False
    uses_proprio = True
    batchable = True
    _frame_kind = "pi0"      # openpi's resize with padding (vlabench/models/frames.py)

    def __init__(self, model, dims, pruner: Pruner | None, tokenizer: Any,
                 norm_stats: dict[str, Any], device: str, dtype: torch.dtype, cfg: Any = None,
                 deviations: list[str] | None = None, io=None):
        check_pruner(pruner)
        cfg = cfg or {}
        self.execute = int(cfg.get("execute", 5))
        if not 1 <= self.execute <= dims.chunk:
            raise ConfigError(f"model.execute={self.execute} must lie in 1..{dims.chunk} (the chunk)")
        super().__init__(model, dims, pruner, tokenizer, norm_stats, device, dtype, cfg=cfg,
                         deviations=deviations, io=io)
        self.last_expert_traces: list = []

    def _new_decoder(self, pruner: Pruner) -> PrunableDecoder:
        return PrunableDecoder(SimpleNamespace(model=self.model.prefix_lm), pruner,
                               probe_mode=self.probe_mode, causal=False)

    @property
    def chunk(self) -> int:
        return self.execute

    # -------------------------------------------------------------- pieces
    def encode_images(self, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 3, 224, 224) in [-1, 1] -> (SigLIP features (n, P, 1152), projected (n, P, d))."""
        feats = self.model.vision_tower(pixel_values=px).last_hidden_state
        return feats, self.model.projector(feats)

    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        return image_tensor(image, self.device, self.dtype)

    def _encode(self, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        feats, emb = self.encode_images(px)
        return feats, emb, None

    def _extra_tokens(self, obs: Observation) -> torch.Tensor:
        """The normalised, zero-padded state (1, max_state_dim)."""
        if self.use_proprio:
            s = pad_to(normalize(oft_proprio(obs.proprio), self.norm_stats["state"]),
                       self.dims.max_state_dim)
        else:
            s = np.zeros(self.dims.max_state_dim)
        return torch.tensor(s, dtype=self.dtype, device=self.device)[None]

    def prefix_embeds(self, vis: torch.Tensor, ids: list[int]) -> tuple[torch.Tensor, list, list]:
        """[image tokens, prompt tokens x sqrt(width)] with kinds and visual ids."""
        t = torch.tensor([ids], device="cpu" if self.meta else self.device).to(self.device)
        # the raw table times sqrt(width), as openpi / lerobot scale the prompt (transformers 5's
        # Gemma embedding module scales by itself, 4.x's GemmaModel did it in forward: neither is used)
        table = self.model.prefix_lm.embed_tokens.weight
        text = torch.nn.functional.embedding(t, table) * math.sqrt(self.dims.llm_hidden)
        m = vis.shape[1]
        kinds = [VISUAL] * m + [BOS] + [TEXT] * (len(ids) - 1)
        return torch.cat([vis, text.to(vis.dtype)], 1), kinds, list(range(m)) + [-1] * len(ids)

    def flow(self, vis: torch.Tensor, ids: list[int], state: torch.Tensor, noise: torch.Tensor,
             keep=None, reuse=None, clock: StageClock | None = None) -> torch.Tensor:
        """Prefix through the prunable decoder, then the flow-matching loop: x_0 (1, 50, 32)."""
        return flow_lanes([self], [vis], [ids], state, noise, [keep], [reuse], clock)

    def noise(self) -> torch.Tensor:
        """x_1 ~ N(0, I) from the global torch RNG (the runner seeds it per episode)."""
        d = self.dims
        return torch.randn((1, d.chunk, d.max_action_dim), dtype=torch.float32).to(self.device)

    def _llm_and_head(self, obs, vis, extra, keep, reuse, clock) -> np.ndarray:
        ids = self.tokenizer.prompt(obs.instruction, self.dims.max_prompt_tokens)
        self.last_text_tokens = len(ids)
        x0 = self.flow(vis, ids, extra, self.noise(), keep=keep, reuse=reuse, clock=clock)
        return self._chunk(x0[0])

    def _llm_and_head_lanes(self, views, obs, vis, extra, keeps, reuses, clock) -> list[np.ndarray]:
        if len(views) == 1:
            return [self._llm_and_head(obs[0], vis[0], extra[0], keeps[0], reuses[0], clock)]
        ids, noise = [], []
        for v, o in zip(views, obs):
            ids.append(v.tokenizer.prompt(o.instruction, v.dims.max_prompt_tokens))
            v.last_text_tokens = len(ids[-1])
            with lane_context(v.decoder.hook_context):   # each lane's own torch stream
                noise.append(v.noise())
        x0 = flow_lanes(views, vis, ids, torch.cat(extra, 0), torch.cat(noise, 0), keeps, reuses, clock)
        return [v._chunk(x0[b]) for b, v in enumerate(views)]

    def _chunk(self, x0: torch.Tensor) -> np.ndarray:
        """The executed actions of one lane's x_0 (chunk, max_action_dim), unnormalised."""
        d = self.dims
        if self.meta:
            return np.zeros((self.execute, d.action_dim))
        a = x0[:, :d.action_dim].float().cpu().numpy().astype(np.float64)
        return unnormalize(a, self.norm_stats["actions"])[: self.execute]

    def flops_by_stage(self) -> dict[str, float]:
        d = self.flops_dims
        return {
            "vision": P.vision_flops(d, len(self.cameras)),
            "llm": P.prefix_flops(d, self.decoder.trace),
            "action_head": P.expert_flops(d, self.last_expert_traces),
        }


def flow_lanes(views: list[Pi0Policy], vis: list[torch.Tensor], ids: list[list[int]],
               state: torch.Tensor, noise: torch.Tensor, keeps: list, reuses: list,
               clock: StageClock | None) -> torch.Tensor:
    """`Pi0Policy.flow` of several slot views in one batched forward: `state` (B, S), `noise`
    (B, chunk, A) -> x_0 (B, chunk, A)."""
    from contextlib import nullcontext

    stage = clock.stage if clock is not None else (lambda _n: nullcontext())
    with stage("llm"):
        inputs = [v.prefix_embeds(x, i) for v, x, i in zip(views, vis, ids)]
        outs = prefill_lanes([v.decoder for v in views], [e for e, _, _ in inputs],
                             [torch.tensor(k) for _, k, _ in inputs],
                             [torch.tensor(i) for _, _, i in inputs], keeps, reuses)
        starts = [int(meta.pos.max()) + 1 for _, meta in outs]
    with stage("action_head"):
        experts = [FlowExpert(v.model, v.dims, v.pruner, clock, v.decoder.hook_context) for v in views]
        x0 = sample_batch(experts, [v.decoder.caches for v in views], starts, state, noise)
        for v, e in zip(views, experts):
            v.last_expert_traces = e.traces
    return x0
