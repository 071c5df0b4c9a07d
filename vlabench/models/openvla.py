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

from vlabench.models.heads import detokenize_actions
from vlabench.models.policy import PrismaticPolicy, text_kinds
from vlabench.models.preprocess import unnormalize_q99
from vlabench.models.tokenizer import prompt_ids


class OpenVLAPolicy(PrismaticPolicy):
    cameras = ("agentview",)
    model_name = "openvla"
    autoregressive = True
    causal = True

    def _llm_and_head(self, obs, vis, extra, keep, reuse, clock) -> np.ndarray:
        d = self.dims
        lm = self.model.language_model
        with clock.stage("llm"):
            ids = prompt_ids(self.tokenizer, obs.instruction, self.io.prompt_style)
            self.last_text_tokens = len(ids) - 1   # after BOS, including the empty token
            embeds, kinds, vids = self._prefix(vis, ids)
            embeds.append(self._text_embeds(ids[1:]))
            kinds += text_kinds(len(ids) - 1)
            vids += [-1] * (len(ids) - 1)
            n = len(kinds)
            h, _ = self.decoder.prefill(torch.cat(embeds, 1), torch.tensor(kinds),
                                        torch.tensor(vids), keep=keep, reuse=reuse)
            tokens = []
            tok = lm.lm_head(h[:, -1:]).argmax(-1)
            for step in range(d.action_dim):
                tokens.append(tok)
                if step == d.action_dim - 1:
                    break
                h = self.decoder.decode(lm.model.embed_tokens(tok), n + step)
                tok = lm.lm_head(h).argmax(-1)
            self.decoder.trace.lm_head_rows = d.action_dim
            ids_out = torch.cat(tokens, 1)[0]
        with clock.stage("action_head"):
            if self.meta:
                return np.zeros((1, d.action_dim))
            vocab = d.vocab_size - d.pad_to_multiple_of
            a = detokenize_actions(ids_out.cpu().numpy(), vocab, d.n_action_bins)
            a = unnormalize_q99(a, self.norm_stats["action"])
            return self._gripper(a[None, :])
