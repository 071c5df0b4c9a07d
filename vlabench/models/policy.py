"""What OpenVLA and OpenVLA-OFT policies share: building, preprocessing, metering, hooks.

A subclass defines the cameras, the token layout after the visual tokens, and how the decoder's
output becomes an action chunk (`_llm_and_head`). `act()` runs: pruner.skip_call -> vision
(the camera frames' preprocessing, timed as its own "preprocess" stage and left out of the
total: core/schema.OUTSIDE_TOTAL_STAGES; both towers, projector) -> pruner.before_llm /
reuse_kv -> decoder (with the layer hooks) -> action head -> pruner.end_of_step, timing each
stage and recording the FLOPs (analytic from the decoder trace; counted with FlopCounterMode
when `count_flops` is set), and the call's peak memory and CUDA time (`metrics/memory.py`,
metered outside the timed region).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from vlabench.core.contracts import CallStats, Observation, PolicyOutput, TaskInfo
from vlabench.core.pruning import BOS, TEXT, VISUAL, ModelInfo, Pruner, VisualTokens
from vlabench.core.schema import OUTSIDE_TOTAL_STAGES
from vlabench.metrics.latency import StageClock
from vlabench.metrics.memory import CallMeter
from vlabench.models import flops as F
from vlabench.models.decoder import PrunableDecoder
from vlabench.models.dims import PrismaticDims
from vlabench.models.preprocess import pixel_tensor, policy_image, postprocess_gripper
from vlabench.models.prismatic import PrismaticVLA
from vlabench.models.suite_io import SuiteIO

_PROCESS_CALLS = {"n": 0}   # model calls made in this process (warm-up accounting)


def identity_stats(dim: int, gripper_mask: bool = True) -> dict[str, Any]:
    """q01 = -1, q99 = 1: unnormalisation is the identity (random-weight builds)."""
    mask = [True] * dim
    if gripper_mask:
        mask[-1] = False
    return {"q01": [-1.0] * dim, "q99": [1.0] * dim, "mask": mask}


class PrismaticPolicy:
    """Base of the OpenVLA-family adapters (see module docstring)."""

    cameras: tuple[str, ...] = ("agentview",)
    model_name = "prismatic"
    autoregressive = False
    causal = True          # False: full bidirectional attention (OpenVLA-OFT)
    uses_proprio = False   # OFT: one proprio token after the visual tokens
    _clock: StageClock | None = None   # the clock of the call in progress (`_preprocessed`)

    def __init__(self, model: PrismaticVLA, dims: PrismaticDims, pruner: Pruner | None,
                 tokenizer: Any, norm_stats: dict[str, Any], device: str, dtype: torch.dtype,
                 cfg: Any = None, deviations: list[str] | None = None, io: SuiteIO | None = None):
        cfg = cfg or {}
        self.io = io or SuiteIO()
        self.deviations = list(deviations or [])
        self.cameras = self._cameras_offered()
        self.use_proprio = self.uses_proprio and self.io.proprio
        if self.uses_proprio and not self.use_proprio:
            self.deviations.append(f"{self.model_name} runs without its proprio token: the suite "
                                   f"gives no robot state")
        self.model = model
        self.dims = dims
        self.flops_dims = dims   # the sizes FLOPs are priced at (bench's twin: the full model's)
        self.pruner = pruner if pruner is not None else Pruner()
        self.tokenizer = tokenizer
        self.norm_stats = norm_stats
        self.device = device
        self.dtype = dtype
        self.meta = device == "meta"
        # meta-device builds have no values: only `vlabench bench` (FLOPs) may call them
        self.shape_only = self.meta
        self.allow_shape_only_calls = False
        crop = self.io.center_crop
        self.center_crop = bool(cfg.get("center_crop", True) if crop is None else crop)
        self.warmup_calls = int(cfg.get("warmup_calls", 1))
        self.count_flops = bool(cfg.get("count_flops", False))
        probe = str(cfg.get("probe_mode", "sdpa"))
        self.needs = frozenset(self._needs())
        self.attn_implementation = "sdpa" + (
            f" ({probe} attention probabilities at layers {sorted(self.pruner.attention_layers)})"
            if self.pruner.attention_layers else "")
        self.probe_mode = probe
        self.decoder = self._new_decoder(self.pruner)
        self.calls_in_episode = 0
        self.pruner.bind(self.info())
        self.last_trace = None
        self.last_flops_by_stage: dict[str, float] = {}

    def _new_decoder(self, pruner: Pruner) -> PrunableDecoder:
        """The decoder loop bound to `pruner` (one per episode slot)."""
        return PrunableDecoder(self.model.language_model, pruner, probe_mode=self.probe_mode,
                               causal=self.causal)

    # -------------------------------------------------------------- contract
    def _cameras_offered(self) -> tuple[str, ...]:
        """The model's cameras that the suite renders (OFT falls back to one image on SIMPLER)."""
        want = type(self).cameras
        if self.io.cameras is None:
            return want
        have = tuple(c for c in want if c in self.io.cameras)
        if not have:
            from vlabench.core.errors import ConfigError

            raise ConfigError(f"{self.model_name} needs camera {want[0]!r}; the suite offers "
                              f"{list(self.io.cameras)}")
        if have != want:
            missing = [c for c in want if c not in have]
            self.deviations.append(f"{self.model_name} runs on {len(have)} image(s) {list(have)}: "
                                   f"the suite has no {', '.join(missing)} camera")
        return have

    def _needs(self) -> set[str]:
        return set(self.cameras) | ({"proprio"} if self.use_proprio else set())

    def info(self) -> ModelInfo:
        d = self.dims
        return ModelInfo(
            name=self.model_name, num_layers=d.llm_layers, hidden_size=d.llm_hidden,
            num_heads=d.llm_heads, cameras=self.cameras, grid=d.grid,
            num_visual=len(self.cameras) * d.patches, action_dim=d.action_dim,
            chunk=self.chunk, autoregressive=self.autoregressive,
            flow_steps=getattr(d, "flow_steps", 0))

    @property
    def chunk(self) -> int:
        return 1

    def reset(self, task: TaskInfo | None = None) -> None:
        self.calls_in_episode = 0
        self.decoder.reset()

    def fork(self, pruner: Pruner) -> PrismaticPolicy:
        """A view of this policy for another episode slot (run.env_workers > 1): it shares the
        model weights, tokenizer, norm stats and I/O settings, and owns `pruner`, a decoder
        bound to it (KV, trace) and the per-episode counters, so interleaved episodes never
        see each other's state."""
        twin = copy.copy(self)
        twin.deviations = list(self.deviations)
        twin.pruner = pruner
        twin.decoder = twin._new_decoder(pruner)
        twin.calls_in_episode = 0
        twin.last_trace = None
        twin.last_flops_by_stage = {}
        pruner.bind(twin.info())
        return twin

    @property
    def observes_steps(self) -> bool:
        """Whether `observe` does anything: only pruners that compare frames across steps read
        the steps served open-loop."""
        return bool(self.pruner.observes_frames)

    def warm_up(self) -> None:
        """The process's first `warmup_calls` model calls, made on a synthetic observation and
        recorded nowhere (the runner calls this before its first episode). Every recorded call
        of a run is then warm, so a resumed run's calls.csv equals an uninterrupted run's
        (issue 16) and no cold call enters the latency figures. Pruner and decoder state are
        reset afterwards."""
        if self.meta:
            return
        from vlabench.models.synthetic import synthetic_observation

        obs = synthetic_observation(0)
        while _PROCESS_CALLS["n"] < self.warmup_calls:
            self.pruner.reset()   # a fresh pruner always runs the model (no skip_call)
            self.reset()
            self.act(obs)
        self.pruner.reset()
        self.reset()

    def observe(self, obs: Observation) -> None:
        """A step executed open-loop from the last chunk: pruners that compare frames across
        steps (`observes_frames`) get the images the towers would see."""
        if self.pruner.observes_frames and not self.meta:
            self.pruner.observe_frame(obs.step, self._images(obs))

    def act(self, obs: Observation) -> PolicyOutput:
        if self.shape_only and not self.allow_shape_only_calls:
            from vlabench.core.errors import ConfigError

            raise ConfigError(f"{self.model_name} with model.checkpoint=null on a machine without a GPU "
                              f"is built on the meta device (shapes and FLOPs only): use `vlabench "
                              f"bench`, or model={self.model_name}-tiny to run episodes")
        warm = _PROCESS_CALLS["n"] < self.warmup_calls
        served = self.pruner.skip_call(obs)
        if served is not None:
            stats = CallStats(source=self.pruner.served_source, warmup=False, mode=self.pruner.mode())
            out = PolicyOutput(served, stats)
            self.pruner.end_of_step(out.actions, stats)
            return out
        _PROCESS_CALLS["n"] += 1
        clock = StageClock(self.device, outside_total=OUTSIDE_TOTAL_STAGES)
        self.decoder.clock = self._clock = clock
        meter = self._meter()
        meter.start()   # outside the timed region (metrics/memory.py)
        with torch.inference_mode():
            if self.count_flops:
                with F.counter() as fc:
                    clock.start()
                    actions, n_vis = self._forward(obs, clock)
                    lat = clock.finish()
                counted = float(fc.get_total_flops())
            else:
                clock.start()
                actions, n_vis = self._forward(obs, clock)
                lat = clock.finish()
                counted = None
        analytic = self.analytic_flops()
        trace = self.decoder.trace
        by_layer = [0 if t is None else t.visual for t in trace.prefill]
        executed = [t for t in trace.prefill if t is not None]
        stats = CallStats(
            latency_ms={} if self.meta else lat,
            tokens_in=n_vis, tokens_kept=executed[-1].visual if executed else 0,
            tokens_by_layer=by_layer, flops=counted if counted is not None else analytic,
            mode=self.pruner.mode(), source="model", warmup=warm,
        )
        t0 = time.perf_counter()
        self.pruner.end_of_step(actions, stats)
        dt = (time.perf_counter() - t0) * 1000.0
        if stats.latency_ms:
            stats.latency_ms["pruner"] = stats.latency_ms.get("pruner", 0.0) + dt
            stats.latency_ms["total"] += dt
        stats.mem_peak_mb, stats.mem_kind, stats.cuda_ms = meter.stop()
        self.calls_in_episode += 1
        self.last_trace = trace
        return PolicyOutput(actions, stats)

    def _meter(self) -> CallMeter:
        """The per-call memory / CUDA-time meter (one per policy, made on first use)."""
        m = self.__dict__.get("_call_meter")
        if m is None or m.device != str(self.device):
            m = self.__dict__["_call_meter"] = CallMeter(self.device)
        return m

    # -------------------------------------------------------------- pieces
    def _images(self, obs: Observation) -> dict[str, np.ndarray]:
        """The camera frames as the reference evaluation feeds the towers (`policy_image`)."""
        io = self.io
        return {c: policy_image(obs.images[c], self.dims.image_size, self.center_crop,
                                resize=io.resize, jpeg=io.jpeg)
                for c in self.cameras}

    def _preprocessed(self, obs: Observation) -> dict[str, np.ndarray]:
        """`_images(obs)`, timed as the call's "preprocess" stage (out of "vision" and "total")."""
        if self._clock is None:
            return self._images(obs)
        with self._clock.stage("preprocess"):
            return self._images(obs)

    def _vision(self, obs: Observation) -> tuple[torch.Tensor, VisualTokens]:
        imgs = self._preprocessed(obs)
        dev = self.device
        px = torch.cat([pixel_tensor(imgs[c], dev, self.dtype) for c in self.cameras], 0)
        feats, probs = self.model.vision_backbone(px, want_attention=self.pruner.vision_attention)
        emb = self.model.projector(feats)
        m = emb.shape[0] * emb.shape[1]
        tokens = VisualTokens(
            embeddings=emb.reshape(m, -1), features=feats.reshape(m, -1), images=imgs,
            vision_attention=None if probs is None else {c: probs[i] for i, c in enumerate(self.cameras)},
            instruction=obs.instruction, call=self.calls_in_episode)
        return emb.reshape(1, m, -1), tokens

    def _text_embeds(self, ids: list[int]) -> torch.Tensor:
        t = torch.tensor([ids], device="cpu" if self.meta else self.device)
        return self.model.language_model.model.embed_tokens(t.to(self.device))

    def _prefix(self, vis: torch.Tensor, prompt: list[int]) -> tuple[list[torch.Tensor], list[int], list[int]]:
        """[BOS] + visual tokens: embeddings, kinds, visual ids."""
        m = vis.shape[1]
        return ([self._text_embeds(prompt[:1]), vis], [BOS] + [VISUAL] * m, [-1] + list(range(m)))

    def _forward(self, obs: Observation, clock: StageClock) -> tuple[np.ndarray, int]:
        with clock.stage("vision"):
            vis, tokens = self._vision(obs)
            extra = self._extra_tokens(obs)
        with clock.stage("pruner"):
            keep = self.pruner.before_llm(tokens)
            reuse = self.pruner.reuse_kv(tokens) if self.pruner.reuses_kv else None
        actions = self._llm_and_head(obs, vis, extra, keep, reuse, clock)
        return actions, vis.shape[1]

    def _extra_tokens(self, obs: Observation) -> torch.Tensor | None:
        return None

    def _llm_and_head(self, obs, vis, extra, keep, reuse, clock) -> np.ndarray:
        raise NotImplementedError

    def _gripper(self, a: np.ndarray) -> np.ndarray:
        """The suite's gripper convention: the raw value (`io.raw_gripper`), else the LIBERO
        evaluation's post-processing."""
        return a if self.io.raw_gripper else postprocess_gripper(a)

    def _stats_for(self, key: str) -> dict[str, Any]:
        return self.norm_stats[key]

    def analytic_flops(self) -> float:
        by = self.flops_by_stage()
        self.last_flops_by_stage = by
        return sum(by.values())

    def flops_by_stage(self) -> dict[str, float]:
        d = self.flops_dims
        n_img = len(self.cameras)
        return {
            "vision": F.vision_flops(d, n_img, probe=self.pruner.vision_attention)
            + F.projector_flops(d, n_img * d.patches),
            "llm": F.llm_flops(d, self.decoder.trace),
        }


def text_kinds(n: int) -> list[int]:
    return [TEXT] * n
