"""OpenVLA-OFT (Kim et al. 2025) for LIBERO: parallel decoding of an 8 x 7 action chunk.

Sequence (openvla-oft `modeling_prismatic.py`, `predict_action`): [BOS] + 256 agentview
patches + 256 wrist patches + 1 proprio token + prompt tokens (after BOS, with the empty token
29871) + 56 action placeholders (their embeddings zeroed) + the stop token (id 2). The action
placeholders attend to each other bidirectionally; all other tokens are causal. The final-norm
hidden states of the 56 placeholders, reshaped to (8, 7 x 4096), go through the L1-regression
head; actions are unnormalised with the dataset's q01/q99 (gripper masked) and the gripper is
post-processed as in the LIBERO evaluation. The chunk is executed open-loop (8 steps).
"""

from __future__ import annotations

import numpy as np
import torch

from vlabench.contracts import Observation
from vlabench.models.policy import PrismaticPolicy, text_kinds
from vlabench.models.preprocess import (
    normalize_q99,
    oft_proprio,
    postprocess_gripper,
    unnormalize_q99,
)
from vlabench.models.tokenizer import prompt_ids
from vlabench.pruners.base import ACTION, PROPRIO, STOP

STOP_ID = 2


class OpenVLAOFTPolicy(PrismaticPolicy):
    cameras = ("agentview", "wrist")
    model_name = "openvla-oft"
    autoregressive = False
    bidir_kind = ACTION

    uses_proprio = True

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

    def _llm_and_head(self, obs, vis, extra, keep, reuse, clock) -> np.ndarray:
        d = self.dims
        n_act = d.chunk * d.action_dim
        with clock.stage("llm"):
            ids = prompt_ids(self.tokenizer, obs.instruction, self.io.prompt_style)
            self.last_text_tokens = len(ids) - 1   # after BOS, including the empty token
            embeds, kinds, vids = self._prefix(vis, ids)
            text = self._text_embeds(ids[1:])
            act = torch.zeros(1, n_act, d.llm_hidden, dtype=text.dtype, device=text.device)
            stop = self._text_embeds([STOP_ID])
            state = [extra] if extra is not None else []
            embeds += state + [text, act, stop]
            kinds += [PROPRIO] * len(state) + text_kinds(len(ids) - 1) + [ACTION] * n_act + [STOP]
            vids += [-1] * (len(state) + len(ids) - 1 + n_act + 1)
            h, meta = self.decoder.prefill(torch.cat(embeds, 1), torch.tensor(kinds),
                                           torch.tensor(vids), keep=keep, reuse=reuse)
            rows = torch.nonzero(meta.kind == ACTION).flatten().to(h.device)
            act_h = h[:, rows]
        with clock.stage("action_head"):
            normed = self.model.action_head(act_h, d.chunk)[0]
            if self.meta:
                return np.zeros((d.chunk, d.action_dim))
            a = normed.float().cpu().numpy().astype(np.float64)
            a = unnormalize_q99(a, self.norm_stats["action"])
            return postprocess_gripper(a)

    def flops_by_stage(self) -> dict[str, float]:
        from vlabench.metrics import flops as F

        out = super().flops_by_stage()
        out["action_head"] = F.oft_head_flops(self.dims)
        return out
