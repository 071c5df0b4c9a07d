"""Latency-aware execution (suite.timing=sync|async): which action runs at each control step.

A call of latency L costs n = ceil(L x control_hz) control steps of simulated time.
- sync: the robot holds for the n steps (they count against the step limit), then runs the
  chunk from its first action. LIBERO-LQ's synchronous mode (vla2026.github.io/libero-lq).
- async: a call starts, from the current observation, when the actions left in the queue are
  no more than the previous call's n (so it lands as the queue runs out); the robot keeps
  consuming the queue meanwhile and holds when it is empty. On arrival the new chunk replaces
  the queue, minus its expired actions: one per action the robot executed since the call's
  observation (lerobot's async client drops actions whose timestep is not after the latest
  executed one; a held step moves nothing, so expires nothing).
`timing.hold`: zero (default; zero motion with the gripper kept: a real arm under a position
target stays at its last target while the policy computes) or repeat (re-send the last action).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable

import numpy as np

from vlabench.core.errors import ConfigError
from vlabench.core.timing import check_hold, check_mode, mode_of, parse_latency
from vlabench.metrics.motion import motion_metrics

EPS = 1e-9


def actions_per_call(policy: Any) -> int:
    """The actions one call returns (a VLA policy's `chunk`; 1 for single-action policies)."""
    return int(getattr(policy, "chunk", 1) or 1)


def method_name(pruner_cfg: Any) -> str:
    """The method a pruner config runs (`vla-pruner-25` -> `vla-pruner`: the shortest name of a
    config with the same plugin), which a profile's overhead_ms is keyed by."""
    from vlabench.core import registry

    name, plugin = str(pruner_cfg.name), pruner_cfg.get("plugin")
    try:
        same = [n for n, e in registry.entries("pruner").items() if e.plugin == plugin]
    except Exception:   # an unreadable config tree: the config's own name
        return name
    return min(same, key=lambda n: (len(n), n)) if same and plugin else name


class Timing:
    """A run's execution mode, latency source and hold rule (built once per Runner)."""

    def __init__(self, cfg: Any):
        self.mode = check_mode(mode_of(cfg))
        t = cfg.get("timing") or {}
        self.kind, self.value = parse_latency(t.get("latency", "measured"))
        self.hold = check_hold(t.get("hold", "zero"))
        self.deadband = float(t.get("deadband_mps", 0.01))
        self.hz = float(cfg.suite.control_hz)
        self.method = method_name(cfg.pruner)
        idle = cfg.suite.get("wait_action")
        self.idle = np.asarray(list(idle), dtype=np.float64) if idle is not None else None
        self.profile = None
        if self.kind == "profile":
            from vlabench.metrics.latency_model import load_profile

            self.profile = load_profile(self.value)

    def describe(self) -> dict[str, Any]:
        """What manifest.json records of the mode (and the profile's coefficients)."""
        out: dict[str, Any] = {"mode": self.mode, "latency": self.kind, "hold": self.hold,
                               "control_hz": self.hz}
        if self.kind == "constant":
            out["latency_ms"] = self.value
        if self.profile is not None:
            out["profile"] = self.profile.to_dict()
        return out

    def check(self, cfg: Any, policy: Any) -> None:
        """Refuse, before anything runs, what this mode cannot do with this policy."""
        if self.mode == "async" and actions_per_call(policy) < 2:
            raise ConfigError(f"suite.timing=async needs a policy that returns an action chunk; "
                              f"{cfg.model.name} returns 1 action per call; valid: suite.timing="
                              f"frozen or sync, or a chunking model (openvla-oft, pi0)")
        if self.profile is not None and int(cfg.run.get("env_workers") or 1) > 1:
            raise ConfigError("timing.latency=profile:... reads each call's FLOPs per stage in the "
                              "policy's process; valid: run.env_workers=1 with a profile")
        if self.profile is not None and not hasattr(policy, "last_flops_by_stage"):
            raise ConfigError(f"timing.latency=profile:... needs a model that counts FLOPs per stage; "
                              f"{cfg.model.name} does not; valid: measured or a duration (400ms)")

    def latency_ms(self, policy: Any, stats: Any) -> float:
        """Simulated latency of one call: a model call's constant or profile value; steps
        served without the model (e.g. SP-VLA's extrapolator) and `measured` use lat_total_ms."""
        measured = float((stats.latency_ms or {}).get("total") or 0.0)
        if self.kind == "measured" or stats.source != "model":
            return measured
        if self.kind == "constant":
            return float(self.value)
        by = getattr(policy, "last_flops_by_stage", None) or {}
        if "llm" not in by:
            raise RuntimeError("the policy reported no FLOPs per stage for the latency profile")
        return self.profile.latency_ms(by.get("llm", 0.0), by.get("vision", 0.0), self.method)

    def delay_steps(self, ms: float) -> int:
        """Control steps a call of `ms` milliseconds costs: ceil(L x control_hz)."""
        return max(0, math.ceil(ms * self.hz / 1000.0 - EPS))


class Schedule:
    """One episode under sync or async: `action(obs, step)` is the action of control step
    `step` (0-based), calling the policy through `call(obs, step) -> (PolicyOutput, call row)`."""

    def __init__(self, timing: Timing, policy: Any, call: Callable[[Any, int], tuple[Any, dict]],
                 observe: Any = None, replan: Any = None):
        self.t, self.policy, self.call = timing, policy, call
        self.observe, self.replan = observe, replan
        self.queue: deque = deque()
        self.hold_left = 0
        self.pending: dict[str, Any] | None = None
        self.last_delay = 0
        self.last: np.ndarray | None = None
        self.executed = 0        # chunk actions executed
        self.held = 0            # hold actions executed
        self.expired = 0         # chunk actions dropped on arrival
        self.positions: list[np.ndarray] = []

    def record(self, obs: Any) -> None:
        """The end-effector position after a reset or a step (for the motion metrics)."""
        pos = (obs.proprio or {}).get("eef_pos")
        if pos is not None:
            self.positions.append(np.asarray(pos, dtype=np.float64)[:3].copy())

    def _delay(self, out: Any, row: dict) -> int:
        ms = self.t.latency_ms(self.policy, out.stats)
        n = self.t.delay_steps(ms)
        row["sim_latency_ms"], row["delay_steps"] = round(ms, 4), n
        return n

    def _hooks(self, obs: Any) -> None:
        """A step served from the chunk: the policy observes it; a pruner may drop the chunk."""
        if self.queue and self.observe is not None:
            self.observe(obs)
            if self.replan is not None and self.replan():
                self.queue.clear()

    def _hold_action(self) -> np.ndarray:
        self.held += 1
        base = self.last if self.last is not None else self.t.idle
        if base is None:   # nothing ran yet and the suite has no idle action: the chunk's gripper
            first = self.queue[0] if self.queue else self.pending["actions"][0]
            base = np.asarray(first, dtype=np.float64)
        if self.t.hold == "repeat":
            return base.copy()
        held = np.zeros_like(base)
        held[-1] = base[-1]   # zero motion, the gripper kept
        return held

    def _take(self) -> np.ndarray:
        self.last = np.asarray(self.queue.popleft(), dtype=np.float64)
        self.executed += 1
        return self.last

    def action(self, obs: Any, step: int) -> np.ndarray:
        return self._sync(obs, step) if self.t.mode == "sync" else self._async(obs, step)

    def _sync(self, obs: Any, step: int) -> np.ndarray:
        if self.hold_left:
            self.hold_left -= 1
            return self._hold_action()
        self._hooks(obs)
        if not self.queue:
            out, row = self.call(obs, step)
            n = self._delay(out, row)
            self.queue.extend(out.actions)
            if n:
                self.hold_left = n - 1
                return self._hold_action()
        return self._take()

    def _arrive(self) -> None:
        p, self.pending = self.pending, None
        expired = min(self.executed - p["executed"], len(p["actions"]))
        p["row"]["expired_actions"] = expired
        self.expired += expired
        self.queue = deque(p["actions"][expired:])

    def _async(self, obs: Any, step: int) -> np.ndarray:
        if self.pending is not None and step >= self.pending["arrival"]:
            self._arrive()
        self._hooks(obs)
        if self.pending is None and len(self.queue) <= self.last_delay:
            out, row = self.call(obs, step)
            n = self.last_delay = self._delay(out, row)
            self.pending = {"actions": list(out.actions), "arrival": step + n,
                            "executed": self.executed, "row": row}
            if n == 0:
                self._arrive()
        return self._take() if self.queue else self._hold_action()

    def summary(self, steps: int, success: bool) -> dict[str, Any]:
        """The episode's timing columns (schema.TIMING_EPISODE_COLUMNS)."""
        out: dict[str, Any] = {"completion_s": round(steps / self.t.hz, 4) if success else None,
                               "held_steps": self.held, "expired_actions": self.expired}
        if len(self.positions) >= 2:
            out.update({k: round(v, 6) for k, v in
                        motion_metrics(np.stack(self.positions), self.t.hz, self.t.deadband).items()})
        return out
