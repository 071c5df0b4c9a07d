"""`run.record_obs=K`: record what the policy saw in one episode per task, for `bench --replay`.

`RecordingPolicy` wraps a policy (a model in this process, or a worker's `RemotePolicy`) and
forwards everything; while an episode chosen for recording runs, it keeps the observations of
its first K `act` calls and of the open-loop steps between them that reach `observe` (only when
the policy's `observe` does something: `observes_steps`), in order, and writes them with
vlabench.records.observations when the K-th call returns or the episode ends. Which episodes:
the manifest's `record_obs` (`plan`), decided once per invocation by the main process; a worker
process reads it from the manifest, so every process records the same episodes, once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlabench.core.contracts import EpisodeSpec, Observation, PolicyOutput, TaskInfo
from vlabench.records import observations as store


def _copy(obs: Observation) -> Observation:
    """The observation's arrays copied (a simulator may reuse its buffers); nothing privileged."""
    return Observation(instruction=obs.instruction, step=obs.step,
                       images={k: v.copy() for k, v in obs.images.items()},
                       proprio={k: v.copy() for k, v in obs.proprio.items()})


class RecordingPolicy:
    """A policy that records the calls of the episodes in `targets` ({task id: episode})."""

    def __init__(self, inner: Any, run_dir: Path, k: int, targets: dict[int, int]):
        self.__dict__.update(_inner=inner, _run_dir=Path(run_dir), _k=int(k),
                             _targets=dict(targets), _rec=None, saved=[])
        if getattr(inner, "observe", None) is not None:
            self.__dict__["observe"] = self._observe

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_inner"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)   # e.g. bench's allow_shape_only_calls

    # ------------------------------------------------------------ episode bounds
    def begin(self, task: TaskInfo, ep: EpisodeSpec) -> None:
        """An episode starts (called before its environment reset)."""
        self.finish()
        if self._targets.get(task.id) == ep.index and self._k > 0:
            self.__dict__["_rec"] = store.Recording(task=task, episode=ep, k=self._k)

    def discard(self) -> None:
        """The episode was interrupted: record nothing of it (a later run records the task)."""
        self.__dict__["_rec"] = None

    def finish(self) -> None:
        """The episode ended: write what it recorded (an episode shorter than K calls too)."""
        rec = self._rec
        self.__dict__["_rec"] = None
        if rec is not None and rec.items:
            self._targets.pop(rec.task.id, None)   # once per task
            self.saved.append(store.save(self._run_dir, rec))

    # ------------------------------------------------------------ the policy
    def reset(self, task: TaskInfo) -> None:
        self._inner.reset(task)

    def act(self, obs: Observation) -> PolicyOutput:
        rec = self._rec
        if rec is not None:
            rec.items.append(("act", _copy(obs)))
        out = self._inner.act(obs)
        if rec is not None and rec.acts >= rec.k:
            self.finish()
        return out

    def _observe(self, obs: Observation) -> None:
        rec = self._rec
        if rec is not None and bool(getattr(self._inner, "observes_steps", True)):
            rec.items.append(("observe", _copy(obs)))
        self._inner.observe(obs)

    def fork(self, pruner: Any) -> Any:
        """A view for another slot, recording nothing (the recorded slot is this one)."""
        return RecordingPolicy(self._inner.fork(pruner), self._run_dir, 0, {})


def install(runner: Any, run_dir: Path, plan: dict[str, Any] | None) -> RecordingPolicy | None:
    """Wrap `runner.policy` and `runner.run_episode` so the episodes of `plan` (the manifest's
    `record_obs`) are recorded; None (nothing changed) when there is nothing to record."""
    k, targets = store.plan_targets(plan)
    if not k or not targets:
        return None
    policy = RecordingPolicy(runner.policy, run_dir, k, targets)
    runner.policy = policy
    run_episode = runner.run_episode

    def recorded_episode(env: Any, task: TaskInfo, ep: EpisodeSpec) -> Any:
        policy.begin(task, ep)
        try:
            result = run_episode(env, task, ep)
        except BaseException:   # Ctrl-C, SIGTERM, a stopped worker: the episode is re-run
            policy.discard()
            raise
        policy.finish()
        return result

    runner.run_episode = recorded_episode
    return policy


def manifest_plan(run_dir: Path) -> dict[str, Any] | None:
    """The `record_obs` of the run's manifest (an environment worker's copy of the main process's
    decision, written before any worker starts)."""
    import json

    try:
        return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8")).get("record_obs")
    except (OSError, ValueError, AttributeError):
        return None
