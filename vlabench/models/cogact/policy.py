"""CogACT (arXiv 2411.19650) on vlabench's prunable decoder: cognition token -> DiT -> actions.

As microsoft/CogACT@b174a1b vla/cogactvla.py `predict_action` (L255-387) runs it: the prompt
`In: What action should the robot take to {instruction.lower()}?\\nOut:` (L281-283, always this
template, also on SIMPLER), tokenised with BOS, then the empty token 29871 and the cognition
token (EOS, id 2) appended (L286-292); [BOS] + 256 patches + the rest through the causal Llama;
the cognition feature is the final-norm hidden state of the last position, the cognition token
(L322: `hidden_states[0][-1][:, -1, :]`). Pruning removes visual tokens only, so that row is
never pruned. The DiT then denoises a (16, 7) chunk with DDIM (`model.ddim_steps`) and
classifier-free guidance (`model.cfg_scale`; the unconditional branch is the learned
`z_embedder.uncondition` feature batched beside the real one, L334-343); actions clipped to
[-1, 1], gripper binarised at 0.5, unnormalised with q01/q99 where the mask is set (L375-385).
The SimplerEnv adapter's adaptive ensemble (ensemble.py) turns the chunk into the one action
executed per call. Batchable (run.batch): each lane keeps its pruner, caches, ensemble and RNG.
Details: docs/models.md#cogact
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from vlabench.core.contracts import Observation, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.core.pruning import Pruner
from vlabench.models.cogact import flops as CF
from vlabench.models.cogact.ddim import DDIMSchedule, ddim_sample
from vlabench.models.cogact.ensemble import AdaptiveEnsembler
from vlabench.models.cogact.sampling import Sampling, sampling_of
from vlabench.models.decoder import prefill_lanes
from vlabench.models.policy import PrismaticPolicy, lane_context, text_kinds
from vlabench.models.preprocess import unnormalize_q99
from vlabench.models.tokenizer import prompt_ids

COGNITION_ID = 2   # the EOS token, appended as the cognition token (cogactvla.py:289-292)
GRIPPER = 6        # the binarised gripper dimension (cogactvla.py:380)


class CogACTPolicy(PrismaticPolicy):
    cameras = ("agentview",)
    model_name = "cogact"
    # OpenVLA's causal layout: the last prompt row (here the cognition token) drives the action,
    # which is what the pruners' "autoregressive" layout reads
    autoregressive = True
    causal = True
    batchable = True   # lanes share the towers, one prefill_lanes and one DiT batch (run.batch)

    def __init__(self, *args, sampling: Sampling | None = None, **kwargs):
        # None (e.g. bench's baseline twin): the model config's settings, no suite-specific ensemble
        self.sampling = sampling or sampling_of(kwargs.get("cfg"), "")[0]
        super().__init__(*args, **kwargs)
        self.schedule = self._schedule()
        self.ensembler = self._new_ensembler()
        self.last_cognition: torch.Tensor | None = None
        self.last_normalized: np.ndarray | None = None

    def _schedule(self) -> DDIMSchedule:
        steps, train = self.sampling.ddim_steps, self.dims.diffusion_steps
        try:
            return DDIMSchedule(train, steps)
        except ValueError:
            valid = sorted({len(range(0, train, i)) for i in range(1, train)} | {1})
            raise ConfigError(f"model.ddim_steps={steps}: the reference's respacing has no integer stride "
                              f"for it over {train} steps; valid: {', '.join(map(str, valid))}") from None

    def _new_ensembler(self) -> AdaptiveEnsembler | None:
        s = self.sampling
        return AdaptiveEnsembler(s.ensemble_horizon, s.ensemble_alpha) if s.ensemble_horizon else None

    def reset(self, task: TaskInfo | None = None) -> None:
        super().reset(task)
        if self.ensembler is not None:
            self.ensembler.reset()

    def fork(self, pruner: Pruner) -> CogACTPolicy:
        twin = super().fork(pruner)
        twin.ensembler = twin._new_ensembler()
        return twin

    def _images(self, obs: Observation) -> dict[str, np.ndarray]:
        """Prismatic's `resize-naive` transform of the full frame: PIL bicubic to 224 x 224 for
        both towers (the adapter feeds the raw frame, cogact_policy.py:136-139)."""
        s = self.dims.image_size
        return {c: np.asarray(Image.fromarray(np.ascontiguousarray(obs.images[c], dtype=np.uint8))
                              .resize((s, s), Image.BICUBIC)) for c in self.cameras}

    def prompt(self, instruction: str) -> list[int]:
        return prompt_ids(self.tokenizer, instruction, "template") + [COGNITION_ID]

    def _inputs(self, vis: torch.Tensor, ids: list[int]):
        """[BOS] + visual + prompt + empty + cognition token: (embeds, kinds, visual ids)."""
        embeds, kinds, vids = self._prefix(vis, ids)
        embeds.append(self._text_embeds(ids[1:]))
        kinds += text_kinds(len(ids) - 1)
        vids += [-1] * (len(ids) - 1)
        return torch.cat(embeds, 1), torch.tensor(kinds), torch.tensor(vids)

    def cognition(self, vis: torch.Tensor, ids: list[int], keep=None, reuse=None) -> torch.Tensor:
        """The cognition feature (1, 1, d): the last row's final-norm hidden state."""
        return cognition_lanes([self], [vis], [ids], [keep], [reuse])

    def sample(self, cognition: torch.Tensor) -> torch.Tensor:
        """DDIM + guidance from N(0, I) drawn from the global RNG: the (16, 7) normalised chunk."""
        return self.sample_lanes([self], cognition)[0]

    def sample_lanes(self, views: list[CogACTPolicy], cognition: torch.Tensor) -> torch.Tensor:
        """`sample` of B lanes in one batch: cognition (B, 1, d) -> (B, 16, 7). Rows: the B
        conditional ones, then (guidance) the B unconditional ones; each lane's noise and step
        draws (its rows b and B + b) are made inside its own RNG (`decoder.hook_context`) with
        the shapes of its batch-1 call, so every lane draws what it would alone."""
        d, s, n = self.dims, self.sampling, len(views)
        net = self.model.action_model.net
        dt = net.x_embedder.linear.weight.dtype
        z = cognition.to(dt)
        noise = []
        for v in views:
            with lane_context(v.decoder.hook_context):
                noise.append(torch.randn(1, d.chunk, d.action_dim, device=z.device))
        x = torch.cat(noise, 0).to(dt)
        if s.cfg_batch == 2:
            x = torch.cat([x, x], 0)
            z = torch.cat([z, net.z_embedder.uncondition.unsqueeze(0).expand(n, 1, -1)], 0)

            def eps_fn(x, t):
                return net.forward_with_cfg(x, t, z, s.cfg_scale)
        else:
            def eps_fn(x, t):
                return net(x, t, z)

        def step_noise(x: torch.Tensor) -> None:
            for b, v in enumerate(views):
                with lane_context(v.decoder.hook_context):
                    torch.randn_like(x[b::n])

        return ddim_sample(eps_fn, x, self.schedule, step_noise)[:n]

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        n = np.clip(normalized, -1, 1)
        n[:, GRIPPER] = np.where(n[:, GRIPPER] < 0.5, 0, 1)
        return unnormalize_q99(n, self.norm_stats["action"])

    def _llm_and_head_lanes(self, views, obs, vis, extra, keeps, reuses, clock) -> list[np.ndarray]:
        with clock.stage("llm"):
            ids = [v.prompt(o.instruction) for v, o in zip(views, obs)]
            for v, i in zip(views, ids):
                v.last_text_tokens = len(i) - 1   # after BOS: prompt, empty token, cognition token
            cog = cognition_lanes(views, vis, ids, keeps, reuses)
            for v in views:
                v.decoder.trace.lm_head_rows = 0
        with clock.stage("action_head"):
            x0 = self.sample_lanes(views, cog)
            if self.meta:
                return [np.zeros((1, self.dims.action_dim)) for _ in views]
            return [v._act(cog[b, 0], x0[b]) for b, v in enumerate(views)]

    def _act(self, cognition: torch.Tensor, x0: torch.Tensor) -> np.ndarray:
        """This lane's executed action from its sampled chunk (its own ensemble's history)."""
        self.last_cognition = cognition.float().cpu()
        self.last_normalized = x0.float().cpu().numpy()
        chunk = self.unnormalize(self.last_normalized.copy())
        a = self.ensembler(chunk)[None] if self.ensembler is not None else chunk[:1]
        return self._gripper(a)

    def flops_by_stage(self) -> dict[str, float]:
        out = super().flops_by_stage()
        out["action_head"] = CF.dit_sampling_flops(self.flops_dims, self.sampling.ddim_steps,
                                                   self.sampling.cfg_batch)
        return out


def cognition_lanes(views: list[CogACTPolicy], vis: list[torch.Tensor], ids: list[list[int]],
                    keeps: list, reuses: list) -> torch.Tensor:
    """Every lane's cognition feature (B, 1, d) from one `prefill_lanes` over the lanes' own
    kept tokens: each lane's last row (rows keep their order; pruning drops visual rows only)."""
    inputs = [v._inputs(x, i) for v, x, i in zip(views, vis, ids)]
    outs = prefill_lanes([v.decoder for v in views], [e for e, _, _ in inputs],
                         [k for _, k, _ in inputs], [i for _, _, i in inputs], keeps, reuses)
    if any(int(meta.vid[-1]) != -1 for _, meta in outs):
        raise RuntimeError("the cognition token is not the decoder's last row")
    return torch.cat([h[:, -1:] for h, _ in outs], 0)
