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
from vlabench.core.pruning import BOS, TEXT, VISUAL, Pruner, VisualTokens
from vlabench.metrics.latency import StageClock
from vlabench.models.decoder import PrunableDecoder
from vlabench.models.pi0 import flops as P
from vlabench.models.pi0.expert import FlowExpert
from vlabench.models.pi0.inputs import image_tensor, normalize, pad_to, resize_with_pad, unnormalize
from vlabench.models.policy import PrismaticPolicy
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
    def _images(self, obs: Observation) -> dict[str, np.ndarray]:
        return {c: resize_with_pad(obs.images[c], self.dims.image_size) for c in self.cameras}

    def observe(self, obs: Observation) -> None:
        if self.pruner.observes_frames and not self.meta:
            self.pruner.observe_frame(obs.step, self._images(obs))

    def encode_images(self, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 3, 224, 224) in [-1, 1] -> (SigLIP features (n, P, 1152), projected (n, P, d))."""
        feats = self.model.vision_tower(pixel_values=px).last_hidden_state
        return feats, self.model.projector(feats)

    def _vision(self, obs: Observation) -> tuple[torch.Tensor, VisualTokens]:
        imgs = self._preprocessed(obs)
        px = torch.cat([image_tensor(imgs[c], self.device, self.dtype) for c in self.cameras], 0)
        feats, emb = self.encode_images(px)
        m = emb.shape[0] * emb.shape[1]
        tokens = VisualTokens(embeddings=emb.reshape(m, -1), features=feats.reshape(m, -1),
                              images=imgs, vision_attention=None, instruction=obs.instruction,
                              call=self.calls_in_episode)
        return emb.reshape(1, m, -1), tokens

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
        from contextlib import nullcontext

        stage = clock.stage if clock is not None else (lambda _n: nullcontext())
        with stage("llm"):
            embeds, kinds, vids = self.prefix_embeds(vis, ids)
            _, meta = self.decoder.prefill(embeds, torch.tensor(kinds), torch.tensor(vids),
                                           keep=keep, reuse=reuse)
            start = int(meta.pos.max()) + 1
        with stage("action_head"):
            expert = FlowExpert(self.model, self.dims, self.pruner, clock)
            x0 = expert.sample(self.decoder.caches, start, state, noise)
            self.last_expert_traces = expert.traces
        return x0

    def noise(self) -> torch.Tensor:
        """x_1 ~ N(0, I) from the global torch RNG (the runner seeds it per episode)."""
        d = self.dims
        return torch.randn((1, d.chunk, d.max_action_dim), dtype=torch.float32).to(self.device)

    def _llm_and_head(self, obs, vis, extra, keep, reuse, clock) -> np.ndarray:
        d = self.dims
        ids = self.tokenizer.prompt(obs.instruction, d.max_prompt_tokens)
        self.last_text_tokens = len(ids)
        x0 = self.flow(vis, ids, extra, self.noise(), keep=keep, reuse=reuse, clock=clock)
        if self.meta:
            return np.zeros((self.execute, d.action_dim))
        a = x0[0, :, :d.action_dim].float().cpu().numpy().astype(np.float64)
        return unnormalize(a, self.norm_stats["actions"])[: self.execute]

    def flops_by_stage(self) -> dict[str, float]:
        d = self.flops_dims
        return {
            "vision": P.vision_flops(d, len(self.cameras)),
            "llm": P.prefix_flops(d, self.decoder.trace),
            "action_head": P.expert_flops(d, self.last_expert_traces),
        }
