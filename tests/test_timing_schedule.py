"""suite.timing=sync|async in the episode loop, hand-worked on a scripted environment."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from vlabench.core.contracts import CallStats, EpisodeSpec, Observation, PolicyOutput, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.run.loop import Runner
from vlabench.run.timing import Timing

TASK = TaskInfo(0, "t", "do it")
IDLE = [0, 0, 0, 0, 0, 0, -1]
HOLD = "H"


class Env:
    """Done at step `done_at`; the end effector moves by the action's first three entries / 1000."""

    def __init__(self, done_at=None):
        self.done_at, self.actions, self.pos = done_at, [], np.zeros(3)

    def _obs(self, step):
        return Observation("do it", step, proprio={"eef_pos": self.pos.copy()})

    def reset(self, episode):
        return self._obs(0)

    def step(self, action, step):
        self.actions.append(np.asarray(action, dtype=float))
        self.pos = self.pos + np.asarray(action[:3], dtype=float) / 1000.0
        return self._obs(step), step == self.done_at

    def close(self):
        pass


class Policy:
    """A chunk of `chunk` actions: entry 0 = 100 x the call's step + index, entry 1 = 1, gripper +1."""

    needs = frozenset()

    def __init__(self, chunk, latency_ms=1.0):
        self.chunk, self.latency_ms, self.acted = chunk, latency_ms, []

    def reset(self, task):
        pass

    def act(self, obs):
        self.acted.append(obs.step)
        a = np.zeros((self.chunk, 7))
        a[:, 0] = np.arange(self.chunk) + 100 * obs.step
        a[:, 1] = 1.0   # every chunk action moves the arm
        a[:, 6] = 1.0
        return PolicyOutput(a, CallStats(latency_ms={"total": self.latency_ms}))


class Suite:
    success_mode = "first_done"

    def __init__(self, limit):
        self.limit = limit

    def max_steps(self, task):
        return self.limit


class NoReset:
    def reset(self):
        pass


def config(mode=None, latency="125ms", hold="zero"):
    suite = {"name": "s", "control_hz": 20, "wait_action": IDLE}
    if mode is not None:
        suite["timing"] = mode
    return OmegaConf.create({"run": {"max_steps": None, "name": "r"}, "model": {"name": "m"},
                             "pruner": {"name": "none"}, "suite": suite,
                             "timing": {"latency": latency, "hold": hold, "deadband_mps": 0.01}})


def episode(policy, limit, mode=None, done_at=None, **kw):
    env = Env(done_at)
    row, calls = Runner(config(mode, **kw), Suite(limit), policy, NoReset(), files=None).run_episode(
        env, TASK, EpisodeSpec(0, 0, 0, 7))
    assert row["error_type"] == "", row["error"]
    return row, calls, env


def shown(actions):
    """Each executed action as its entry 0, or H for a hold (zero arm motion)."""
    return [HOLD if not a[:6].any() else int(a[0]) for a in actions]


def test_a_latency_of_2_5_control_steps_holds_exactly_3_steps_in_sync_and_the_limit_counts_them():
    pol = Policy(4)
    row, calls, env = episode(pol, 14, "sync")
    assert shown(env.actions) == [HOLD] * 3 + [0, 1, 2, 3] + [HOLD] * 3 + [700, 701, 702, 703]
    assert pol.acted == [0, 7] and [c["delay_steps"] for c in calls] == [3, 3]
    assert [c["sim_latency_ms"] for c in calls] == [125.0, 125.0]
    assert row["steps"] == 14 and row["held_steps"] == 6 and row["expired_actions"] == 0
    # the held steps keep the gripper: the suite's idle gripper before any action, then the last one
    assert [a[6] for a in env.actions[:3]] == [-1, -1, -1] and env.actions[7][6] == 1.0
    row, _, env = episode(Policy(4), 5, "sync")          # the step limit counts held steps
    assert row["steps"] == 5 and shown(env.actions) == [HOLD] * 3 + [0, 1]


def test_sync_success_during_a_hold_ends_the_episode_and_its_completion_time_counts_the_hold():
    row, _, env = episode(Policy(4), 14, "sync", done_at=2)
    assert row["success"] and row["steps"] == 2 and row["completion_s"] == pytest.approx(0.1)


def test_async_skips_exactly_the_actions_executed_while_the_call_computed():
    pol = Policy(4)
    row, calls, env = episode(pol, 14, "async")
    # call 0 (step 0) lands at step 3 with nothing executed meanwhile: nothing expires; call 1
    # (step 4, 3 actions left = the delay) lands at 7 after 3 executed: 400..402 expire; call 2
    # (step 7) lands at 10 after 1 executed: 700 expires; call 3 (step 10) lands at 13 after 3
    assert shown(env.actions) == [HOLD] * 3 + [0, 1, 2, 3, 403, HOLD, HOLD, 701, 702, 703, 1003]
    assert pol.acted == [0, 4, 7, 10, 13]
    assert [c.get("expired_actions") for c in calls] == [0, 3, 1, 3, None]   # the last never landed
    assert row["expired_actions"] == 7 and row["held_steps"] == 5 and row["steps"] == 14


def test_async_with_a_delay_beyond_the_chunk_executes_nothing_of_a_chunk_that_expired():
    pol = Policy(2)
    _, calls, env = episode(pol, 12, "async", latency="150ms")   # 3 steps, chunk of 2
    assert shown(env.actions)[:5] == [HOLD, HOLD, HOLD, 0, 1]
    assert all(c.get("expired_actions") in (None, 0, 1, 2) for c in calls)


def test_zero_latency_sync_and_async_execute_what_frozen_executes():
    frozen = episode(Policy(3), 10)
    for mode in ("sync", "async"):
        timed = episode(Policy(3), 10, mode, latency="0ms")
        assert shown(timed[2].actions) == shown(frozen[2].actions)
        assert [c["step"] for c in timed[1]] == [c["step"] for c in frozen[1]]
        assert timed[0]["held_steps"] == 0 and timed[0]["expired_actions"] == 0


def test_frozen_rows_carry_no_timing_cells_and_frozen_configs_build_no_schedule():
    row, calls, _ = episode(Policy(3), 10)
    assert "held_steps" not in row and not any("delay_steps" in c for c in calls)
    assert Runner(config(None), Suite(3), Policy(1), NoReset(), files=None).timing is None
    assert Runner(config("frozen"), Suite(3), Policy(1), NoReset(), files=None).timing is None


def test_hold_repeat_resends_the_last_action_and_measured_uses_the_calls_own_latency():
    _, _, env = episode(Policy(2), 8, "sync", hold="repeat")
    assert shown(env.actions)[:6] == [HOLD, HOLD, HOLD, 0, 1, 1]   # first holds: the idle action
    _, calls, env = episode(Policy(2, latency_ms=51.0), 6, "sync", latency="measured")
    assert calls[0]["delay_steps"] == 2 and shown(env.actions)[:4] == [HOLD, HOLD, 0, 1]


def test_async_needs_a_chunking_policy():
    t = Timing(config("async"))
    cfg = config("async")
    with pytest.raises(ConfigError, match="needs a policy that returns an action chunk"):
        t.check(cfg, Policy(1))
    t.check(cfg, Policy(4))


def test_delay_steps_round_up_exactly():
    t = Timing(config("sync"))
    assert [t.delay_steps(ms) for ms in (0, 1, 50, 50.0001, 125, 400, 1000)] == [0, 1, 1, 2, 3, 8, 20]
