"""The data that crosses the model / pruner / suite triangle.

Plain dataclasses with numpy payloads: importing this module must stay cheap (no torch, no
simulator). A suite produces `Observation`s and consumes actions; a policy consumes
`Observation`s and produces `PolicyOutput`s; the runner turns `CallStats` into records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Observation keys a policy may declare in `Policy.needs`; a suite renders only what is needed.
IMAGE_KEYS = ("agentview", "wrist")
STATE_KEYS = ("proprio",)
PRIVILEGED_KEY = "privileged"
# SIMPLER action conventions: a model whose suite declares `action_convention.gripper` equal to
# this emits its raw gripper value as an open fraction (vlabench.suites.simpler_actions).
RAW_GRIPPER = "open_fraction"


@dataclass(frozen=True)
class TaskInfo:
    """One task of a suite."""

    id: int
    name: str
    instruction: str


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode of a task: which stored init state and which seed it uses."""

    task_id: int
    index: int
    init_state: int
    seed: int


@dataclass
class Observation:
    """What the simulator shows a policy at one control step.

    images: name -> HxWx3 uint8 in the protocol's orientation (LIBERO: both axes flipped).
    proprio: name -> float array (LIBERO: eef_pos (3), eef_quat (4, xyzw), gripper_qpos (2)).
    privileged: simulator state for scripted policies only (never given to VLA adapters).
    prepared: the model's input frames, camera -> uint8 image, when a simulator worker already
      prepared them (run.env_workers > 1: vlabench/models/frames.py); `prepared_ms` its time.
    """

    instruction: str
    step: int
    images: dict[str, np.ndarray] = field(default_factory=dict)
    proprio: dict[str, np.ndarray] = field(default_factory=dict)
    privileged: dict[str, Any] | None = None
    prepared: dict[str, np.ndarray] | None = None
    prepared_ms: float | None = None


@dataclass
class CallStats:
    """Metering of one `Policy.act` call; the runner writes one calls.csv row per call.

    latency_ms: stage -> milliseconds; stages are "vision", "llm", "action_head", "pruner" and
      "total" (absent stages are left empty in the records).
    source: "model" for a real forward pass, anything else (e.g. "extrapolator") for a step
      served without calling the model.
    tokens_by_layer: visual tokens alive entering each decoder layer, when known.
    mem_peak_mb / mem_kind: peak memory of the call in MiB and what was measured ("cuda": the
      absolute peak of torch.cuda.max_memory_allocated, weights included; "rss": the peak
      resident-set increase of the process during the call); None when not metered
      (vlabench/metrics/memory.py).
    cuda_ms: GPU time of the call (CUDA events around the whole call); None off CUDA.
    batch: how many calls shared the forward pass; above 1 the latency and memory are the
      batch's (throughput, not the per-call latency the papers print).
    """

    latency_ms: dict[str, float] = field(default_factory=dict)
    tokens_in: int | None = None
    tokens_kept: int | None = None
    tokens_by_layer: list[int] | None = None
    flops: float | None = None
    mode: str | None = None
    source: str = "model"
    warmup: bool = False
    mem_peak_mb: float | None = None
    mem_kind: str | None = None
    cuda_ms: float | None = None
    batch: int = 1                 # lanes of the forward pass this call ran in (run.batch)


@dataclass
class PolicyOutput:
    """An action chunk (T x action_dim, suite action convention) executed open-loop."""

    actions: np.ndarray
    stats: CallStats = field(default_factory=CallStats)

    def __post_init__(self) -> None:
        a = np.asarray(self.actions, dtype=np.float64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"a policy must return a (T, action_dim) chunk, got shape {a.shape}")
        self.actions = a


@runtime_checkable
class Policy(Protocol):
    """A control policy. `needs` names the observation keys it reads (see IMAGE_KEYS)."""

    needs: frozenset[str]

    def reset(self, task: TaskInfo) -> None: ...

    def act(self, obs: Observation) -> PolicyOutput: ...


@runtime_checkable
class EpisodeResettable(Protocol):
    """Anything with per-episode state (pruners); the runner calls `reset()` per episode."""

    def reset(self) -> None: ...
