"""OpenVLA (Kim et al. 2024) for LIBERO: 7 action tokens decoded greedily with a KV cache.

Sequence (openvla `modeling_prismatic.py`, `predict_action`): [BOS] + 256 agentview patches +
prompt tokens (after BOS, with the empty token 29871). Generation is greedy over the whole
vocabulary (`do_sample=False`, 7 new tokens): one prefill then 6 cached decode steps, new
tokens at the original positions that follow the unpruned prompt. Tokens are de-tokenised
through the 256 action bins (bin = 32000 - token - 1), unnormalised with q01/q99 of the suite's
unnorm key (gripper masked), and the gripper post-processed as in the LIBERO evaluation.
"""

from __future__ import annotations

import numpy as np
import torch

from vlabench.models.decoder import decode_lanes, prefill_lanes
from vlabench.models.heads import detokenize_actions
from vlabench.models.policy import PrismaticPolicy, text_kinds
from vlabench.models.preprocess import unnormalize_q99
from vlabench.models.tokenizer import prompt_ids


class OpenVLAPolicy(PrismaticPolicy):
    cameras = ("agentview",)
    model_name = "openvla"
    autoregressive = True
    causal = True
    batchable = True

    def _llm_and_head_lanes(self, views, obs, vis, extra, keeps, reuses, clock) -> list[np.ndarray]:
        d = self.dims
        lm = self.model.language_model
        decoders = [v.decoder for v in views]
        with clock.stage("llm"):
            inputs, lengths = [], []
            for v, o, x in zip(views, obs, vis):
                ids = prompt_ids(v.tokenizer, o.instruction, v.io.prompt_style)
                v.last_text_tokens = len(ids) - 1   # after BOS, including the empty token
                embeds, kinds, vids = v._prefix(x, ids)
                embeds.append(v._text_embeds(ids[1:]))
                kinds += text_kinds(len(ids) - 1)
                vids += [-1] * (len(ids) - 1)
                inputs.append((torch.cat(embeds, 1), torch.tensor(kinds), torch.tensor(vids)))
                lengths.append(len(kinds))
            outs = prefill_lanes(decoders, [i[0] for i in inputs], [i[1] for i in inputs],
                                 [i[2] for i in inputs], keeps, reuses)
            tok = lm.lm_head(torch.cat([h[:, -1:] for h, _ in outs], 0)).argmax(-1)   # (B, 1)
            tokens = []
            for step in range(d.action_dim):
                tokens.append(tok)
                if step == d.action_dim - 1:
                    break
                emb = lm.model.embed_tokens(tok)
                hs = decode_lanes(decoders, list(emb.split(1, 0)), [n + step for n in lengths])
                tok = lm.lm_head(torch.cat(hs, 0)).argmax(-1)
            for dec in decoders:
                dec.trace.lm_head_rows = d.action_dim
            ids_out = torch.cat(tokens, 1)   # (B, action_dim)
        with clock.stage("action_head"):
            if self.meta:
                return [np.zeros((1, d.action_dim)) for _ in views]
            vocab = d.vocab_size - d.pad_to_multiple_of
            a = detokenize_actions(ids_out.cpu().numpy(), vocab, d.n_action_bins)
            return [v._gripper(unnormalize_q99(a[b], v.norm_stats["action"])[None, :])
                    for b, v in enumerate(views)]
