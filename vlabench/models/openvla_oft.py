"""OpenVLA-OFT (Kim et al. 2025) for LIBERO: parallel decoding of an 8 x 7 action chunk.

One forward pass over [BOS] + agentview and wrist patches + a proprio token + the prompt + 56
action placeholders + stop, with fully bidirectional attention as the official model runs it
(a causal Llama loses about 40 points on LIBERO-Spatial). The L1-regression head reads the 56
hidden rows one position before the placeholders; the 8 actions are unnormalised with the
dataset's q01/q99 and executed open-loop.

Details: docs/models.md#openvla_oft
"""

from __future__ import annotations

import numpy as np
import torch

from vlabench.core.contracts import Observation
from vlabench.core.pruning import ACTION, PROPRIO, STOP
from vlabench.models.decoder import prefill_lanes
from vlabench.models.policy import PrismaticPolicy, text_kinds
from vlabench.models.preprocess import normalize_q99, oft_proprio, unnormalize_q99
from vlabench.models.tokenizer import prompt_ids

STOP_ID = 2


class OpenVLAOFTPolicy(PrismaticPolicy):
    cameras = ("agentview", "wrist")
    model_name = "openvla-oft"
    autoregressive = False
    causal = False

    uses_proprio = True
    batchable = True

    @property
    def chunk(self) -> int:
        return self.dims.chunk

    def _extra_tokens(self, obs: Observation) -> torch.Tensor | None:
        """The proprio token (1, 1, d), or None without robot state."""
        if not self.use_proprio:
            return None
        state = normalize_q99(oft_proprio(obs.proprio), self.norm_stats["proprio"])
        x = torch.tensor(state, dtype=self.dtype, device=self.device)[None, None]
        return self.model.proprio_projector(x)

    def _inputs(self, obs: Observation, vis: torch.Tensor, extra: torch.Tensor | None):
        """[BOS] + visual + proprio + prompt + action placeholders + stop: (embeds, kinds, ids)."""
        n_act = self.dims.chunk * self.dims.action_dim
        ids = prompt_ids(self.tokenizer, obs.instruction, self.io.prompt_style)
        self.last_text_tokens = len(ids) - 1   # after BOS, including the empty token
        embeds, kinds, vids = self._prefix(vis, ids)
        text = self._text_embeds(ids[1:])
        act = torch.zeros(1, n_act, self.dims.llm_hidden, dtype=text.dtype, device=text.device)
        stop = self._text_embeds([STOP_ID])
        state = [extra] if extra is not None else []
        embeds += state + [text, act, stop]
        kinds += [PROPRIO] * len(state) + text_kinds(len(ids) - 1) + [ACTION] * n_act + [STOP]
        vids += [-1] * (len(state) + len(ids) - 1 + n_act + 1)
        return torch.cat(embeds, 1), torch.tensor(kinds), torch.tensor(vids)

    def _llm_and_head_lanes(self, views, obs, vis, extra, keeps, reuses, clock) -> list[np.ndarray]:
        d = self.dims
        with clock.stage("llm"):
            inputs = [v._inputs(o, x, e) for v, o, x, e in zip(views, obs, vis, extra)]
            outs = prefill_lanes([v.decoder for v in views], [i[0] for i in inputs],
                                 [i[1] for i in inputs], [i[2] for i in inputs], keeps, reuses)
            act_h = torch.cat([h[:, action_head_rows(meta.pos, meta.kind).to(h.device)]
                               for h, meta in outs], 0)
        with clock.stage("action_head"):
            normed = self.model.action_head(act_h, d.chunk)
            if self.meta:
                return [np.zeros((d.chunk, d.action_dim)) for _ in views]
            a = normed.float().cpu().numpy().astype(np.float64)
            return [v._gripper(unnormalize_q99(a[b], v.norm_stats["action"], eps=1e-8))
                    for b, v in enumerate(views)]

    def flops_by_stage(self) -> dict[str, float]:
        from vlabench.models import flops as F

        out = super().flops_by_stage()
        out["action_head"] = F.oft_head_flops(self.flops_dims)
        return out


def action_head_rows(pos: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """Rows of the alive tokens whose hidden states feed the action head: the token one original
    position before each action placeholder (see the module docstring). Pruning removes visual
    tokens only, so the prompt's last token and the placeholders are always alive."""
    target = pos[kind == ACTION] - 1
    rows = torch.nonzero(torch.isin(pos, target)).flatten()
    if rows.numel() != target.numel():
        raise RuntimeError("a token feeding the OFT action head was pruned")
    return rows
