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
from vlabench.models.frames import FrameRecipe, LazyFrames
from vlabench.models.preprocess import pixel_tensor, postprocess_gripper
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
    batchable = False      # True: `_llm_and_head_lanes` runs several lanes in one forward

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
        steps (`observes_frames`) get the images the towers would see, each prepared only when
        the pruner reads it (`LazyFrames`)."""
        if self.pruner.observes_frames and not self.meta:
            recipe = self.frame_recipe()
            lazy = obs.prepared is None and recipe is not None
            self.pruner.observe_frame(obs.step, LazyFrames(recipe, obs.images) if lazy else self._images(obs))

    def act(self, obs: Observation) -> PolicyOutput:
        return self.act_lanes([self], [obs])[0]

    def act_lanes(self, views: list[PrismaticPolicy], obs: list[Observation],
                  contexts: list[Any] | None = None) -> list[PolicyOutput]:
        """`act` of several slot views of this policy (`fork`), the model calls among them run
        as one batched forward (run.batch). `contexts[b]`: a zero-argument factory of the
        context (lane b's RNG) entered around each of lane b's pruner hooks and draws; every
        lane then sees what its batch-1 call would (tests/test_batch_equality.py)."""
        if self.shape_only and not self.allow_shape_only_calls:
            from vlabench.core.errors import ConfigError

            raise ConfigError(f"{self.model_name} with model.checkpoint=null on a machine without a GPU "
                              f"is built on the meta device (shapes and FLOPs only): use `vlabench "
                              f"bench`, or model={self.model_name}-tiny to run episodes")
        if len(views) > 1 and not self.batchable:
            raise RuntimeError(f"{self.model_name} has no batched forward (run.batch=1)")
        contexts = list(contexts) if contexts is not None else [None] * len(views)
        outs: list[PolicyOutput | None] = [None] * len(views)
        run: list[int] = []
        for b, (v, o) in enumerate(zip(views, obs)):
            with lane_context(contexts[b]):
                served = v.pruner.skip_call(o)
                if served is not None:
                    stats = CallStats(source=v.pruner.served_source, warmup=False, mode=v.pruner.mode())
                    outs[b] = PolicyOutput(served, stats)
                    v.pruner.end_of_step(served, stats)
                    continue
            run.append(b)
        if run:
            results = self._model_call([views[b] for b in run], [obs[b] for b in run],
                                       [contexts[b] for b in run])
            for b, out in zip(run, results):
                outs[b] = out
        return outs  # type: ignore[return-value]

    def _model_call(self, views: list[PrismaticPolicy], obs: list[Observation],
                    contexts: list[Any]) -> list[PolicyOutput]:
        """One forward pass over `views` (the lanes that call the model), metered."""
        warm = _PROCESS_CALLS["n"] < self.warmup_calls
        _PROCESS_CALLS["n"] += len(views)
        clock = StageClock(self.device, outside_total=OUTSIDE_TOTAL_STAGES)
        for v, c in zip(views, contexts):
            v.decoder.clock = v._clock = clock
            v.decoder.hook_context = c
        meter = self._meter()
        meter.start()   # outside the timed region (metrics/memory.py)
        counted = None
        try:
            with torch.inference_mode():
                if self.count_flops and len(views) == 1:
                    with F.counter() as fc:
                        clock.start()
                        actions, n_vis = self._forward_lanes(views, obs, contexts, clock)
                        lat = clock.finish()
                    counted = float(fc.get_total_flops())
                else:
                    clock.start()
                    actions, n_vis = self._forward_lanes(views, obs, contexts, clock)
                    lat = clock.finish()
        finally:
            for v in views:
                v.decoder.hook_context = None
        mem = meter.stop()
        outs = []
        for v, a, n, c, o in zip(views, actions, n_vis, contexts, obs):
            analytic = v.analytic_flops()
            trace = v.decoder.trace
            executed = [t for t in trace.prefill if t is not None]
            stats = CallStats(
                latency_ms={} if self.meta else dict(lat), tokens_in=n,
                tokens_kept=executed[-1].visual if executed else 0,
                tokens_by_layer=[0 if t is None else t.visual for t in trace.prefill],
                flops=counted if counted is not None else analytic,
                mode=v.pruner.mode(), source="model", warmup=warm, batch=len(views),
            )
            t0 = time.perf_counter()
            with lane_context(c):
                v.pruner.end_of_step(a, stats)
            dt = (time.perf_counter() - t0) * 1000.0
            if stats.latency_ms:
                stats.latency_ms["pruner"] = stats.latency_ms.get("pruner", 0.0) + dt
                stats.latency_ms["total"] += dt
            if stats.latency_ms and o.prepared_ms is not None:   # prepared by the simulator worker
                stats.latency_ms["preprocess"] = o.prepared_ms
            stats.mem_peak_mb, stats.mem_kind, stats.cuda_ms = mem
            v.calls_in_episode += 1
            v.last_trace = trace
            outs.append(PolicyOutput(a, stats))
        return outs

    def _meter(self) -> CallMeter:
        """The per-call memory / CUDA-time meter (one per policy, made on first use)."""
        m = self.__dict__.get("_call_meter")
        if m is None or m.device != str(self.device):
            m = self.__dict__["_call_meter"] = CallMeter(self.device)
        return m

    # -------------------------------------------------------------- pieces
    def frame_recipe(self) -> FrameRecipe | None:
        """How this policy prepares camera frames, for its simulator workers to do it
        (vlabench/models/frames.py); None when a subclass prepares them its own way."""
        if type(self)._images is not PrismaticPolicy._images:
            return None
        io = self.io
        return FrameRecipe(tuple(self.cameras), self.dims.image_size, self._frame_kind,
                           self.center_crop, io.resize, io.jpeg)

    _frame_kind = "prismatic"

    def _images(self, obs: Observation) -> dict[str, np.ndarray]:
        """The camera frames as the reference evaluation feeds the towers (`FrameRecipe`), or
        those a simulator worker already prepared."""
        if obs.prepared is not None:
            return {c: obs.prepared[c] for c in self.cameras}
        return self.frame_recipe().prepare(obs.images)

    def _preprocessed(self, obs: Observation) -> dict[str, np.ndarray]:
        """`_images(obs)`, timed as the call's "preprocess" stage (out of "vision" and "total");
        frames a worker prepared were timed there (`_model_call` records that time)."""
        if self._clock is None or obs.prepared is not None:
            return self._images(obs)
        with self._clock.stage("preprocess"):
            return self._images(obs)

    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        """One preprocessed camera frame as the towers' input (1, C, H, W)."""
        return pixel_tensor(image, self.device, self.dtype)

    def _encode(self, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(n, C, H, W) frames -> (features, projected tokens, vision attention or None)."""
        feats, probs = self.model.vision_backbone(px, want_attention=self.pruner.vision_attention)
        return feats, self.model.projector(feats), probs

    def _vision(self, obs: Observation) -> tuple[torch.Tensor, VisualTokens]:
        """One observation's (1, M, d) visual embeddings and `VisualTokens`."""
        vis, tokens = self._vision_lanes([self], [obs])
        return vis[0], tokens[0]

    def _vision_lanes(self, views: list[PrismaticPolicy],
                      obs: list[Observation]) -> tuple[list[torch.Tensor], list[VisualTokens]]:
        """Every lane's frames through the towers in one batch: per lane the (1, M, d) visual
        embeddings and its `VisualTokens`."""
        imgs = [v._preprocessed(o) for v, o in zip(views, obs)]
        px = torch.cat([self._pixels(im[c]) for im in imgs for c in self.cameras], 0)
        feats, emb, probs = self._encode(px)
        n_cam = len(self.cameras)
        vis, tokens = [], []
        for b, (v, o) in enumerate(zip(views, obs)):
            lane = slice(b * n_cam, (b + 1) * n_cam)
            e, f = emb[lane], feats[lane]
            m = e.shape[0] * e.shape[1]
            p = None if probs is None else probs[lane]
            vis.append(e.reshape(1, m, -1))
            tokens.append(VisualTokens(
                embeddings=e.reshape(m, -1), features=f.reshape(m, -1), images=imgs[b],
                vision_attention=None if p is None else {c: p[i] for i, c in enumerate(self.cameras)},
                instruction=o.instruction, call=v.calls_in_episode))
        return vis, tokens

    def _text_embeds(self, ids: list[int]) -> torch.Tensor:
        t = torch.tensor([ids], device="cpu" if self.meta else self.device)
        return self.model.language_model.model.embed_tokens(t.to(self.device))

    def _prefix(self, vis: torch.Tensor, prompt: list[int]) -> tuple[list[torch.Tensor], list[int], list[int]]:
        """[BOS] + visual tokens: embeddings, kinds, visual ids."""
        m = vis.shape[1]
        return ([self._text_embeds(prompt[:1]), vis], [BOS] + [VISUAL] * m, [-1] + list(range(m)))

    def _forward_lanes(self, views: list[PrismaticPolicy], obs: list[Observation],
                       contexts: list[Any], clock: StageClock) -> tuple[list[np.ndarray], list[int]]:
        with clock.stage("vision"):
            vis, tokens = self._vision_lanes(views, obs)
            extra = [v._extra_tokens(o) for v, o in zip(views, obs)]
        keeps, reuses = [], []
        with clock.stage("pruner"):
            for v, t, c in zip(views, tokens, contexts):
                with lane_context(c):
                    keeps.append(v.pruner.before_llm(t))
                    reuses.append(v.pruner.reuse_kv(t) if v.pruner.reuses_kv else None)
        actions = self._llm_and_head_lanes(views, obs, vis, extra, keeps, reuses, clock)
        return actions, [x.shape[1] for x in vis]

    def _extra_tokens(self, obs: Observation) -> torch.Tensor | None:
        return None

    def _llm_and_head_lanes(self, views, obs, vis, extra, keeps, reuses, clock) -> list[np.ndarray]:
        """The decoder and action head of every lane (`batchable` families batch them; the
        others run one lane through `_llm_and_head`)."""
        if len(views) != 1:
            raise RuntimeError(f"{self.model_name} has no batched forward (run.batch=1)")
        return [self._llm_and_head(obs[0], vis[0], extra[0], keeps[0], reuses[0], clock)]

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


def lane_context(factory: Any) -> Any:
    """The context a lane's hooks run in: `factory()`, or nothing for a batch-1 call."""
    from contextlib import nullcontext

    return nullcontext() if factory is None else factory()


def text_kinds(n: int) -> list[int]:
    return [TEXT] * n
