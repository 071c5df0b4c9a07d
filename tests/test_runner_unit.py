"""The episode loop's logic on a scripted environment (the simulator is isolated away)."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from vlabench.core.contracts import CallStats, EpisodeSpec, Observation, PolicyOutput, TaskInfo
from vlabench.run.loop import Runner

TASK = TaskInfo(0, "t", "do it")


class CountingEnv:
    """Reports done at step `done_at`; records the actions it was given."""

    def __init__(self, done_at: int | None):
        self.done_at, self.actions = done_at, []

    def reset(self, episode: EpisodeSpec) -> Observation:
        return Observation("do it", 0)

    def step(self, action, step: int):
        self.actions.append(np.asarray(action))
        return Observation("do it", step), step == self.done_at

    def close(self) -> None:
        pass


class ChunkPolicy:
    needs = frozenset()

    def __init__(self, chunk: int):
        self.chunk, self.acted, self.observed = chunk, [], []

    def reset(self, task: TaskInfo) -> None:
        pass

    def act(self, obs: Observation) -> PolicyOutput:
        self.acted.append(obs.step)
        a = np.zeros((self.chunk, 7))
        a[:, 0] = np.arange(self.chunk) + 100 * obs.step
        return PolicyOutput(a, CallStats(latency_ms={"total": 1.0}))

    def observe(self, obs: Observation) -> None:
        self.observed.append(obs.step)


class Suite:
    success_mode = "first_done"

    def __init__(self, limit: int):
        self.limit = limit

    def max_steps(self, task: TaskInfo) -> int:
        return self.limit


class NoReset:
    def reset(self) -> None:
        pass


def runner(policy, limit=10, cap=None, mode="first_done") -> Runner:
    cfg = OmegaConf.create({"run": {"max_steps": cap, "name": "r"}, "model": {"name": "m"},
                            "pruner": {"name": "none"}, "suite": {"name": "s"}})
    suite = Suite(limit)
    suite.success_mode = mode
    return Runner(cfg, suite, policy, NoReset(), files=None)


def test_chunks_run_open_loop_and_the_policy_observes_the_steps_it_is_not_called_on():
    pol, env = ChunkPolicy(3), CountingEnv(done_at=None)
    row, calls = runner(pol, limit=8).run_episode(env, TASK, EpisodeSpec(0, 0, 0, 7))
    assert pol.acted == [0, 3, 6] and pol.observed == [1, 2, 4, 5, 7]
    assert [c["step"] for c in calls] == [0, 3, 6] and row["steps"] == 8 and not row["success"]
    assert [a[0] for a in env.actions] == [0, 1, 2, 300, 301, 302, 600, 601]


def test_first_done_ends_the_episode_and_final_step_mode_reads_the_last_flag():
    row, _ = runner(ChunkPolicy(1), limit=10).run_episode(CountingEnv(4), TASK, EpisodeSpec(0, 0, 0, 7))
    assert row["success"] and row["steps"] == 4
    row, _ = runner(ChunkPolicy(1), limit=10, mode="final_step").run_episode(
        CountingEnv(4), TASK, EpisodeSpec(0, 0, 0, 7))
    assert not row["success"] and row["steps"] == 10          # done at step 4 only: not at the end
    row, _ = runner(ChunkPolicy(1), limit=4, mode="final_step").run_episode(
        CountingEnv(4), TASK, EpisodeSpec(0, 0, 0, 7))
    assert row["success"] and row["steps"] == 4


def test_run_max_steps_caps_the_suite_limit():
    row, _ = runner(ChunkPolicy(2), limit=10, cap=5).run_episode(CountingEnv(None), TASK, EpisodeSpec(0, 0, 0, 7))
    assert row["steps"] == 5


def test_an_environment_that_fails_to_build_is_recorded_per_episode(tmp_path):
    from vlabench.core.schema import EPISODE_COLUMNS
    from vlabench.records.files import RunFiles, read_rows
    from vlabench.run.progress import RunProgress

    class BrokenSuite(Suite):
        def make_env(self, task, needs):
            raise OSError("no EGL display")

    files = RunFiles(tmp_path)
    files.open()
    r = runner(ChunkPolicy(1))
    r.suite, r.files = BrokenSuite(5), files
    plan = {0: [EpisodeSpec(0, i, i, 7) for i in range(2)]}
    with RunProgress(2, 0, quiet=True, title="t") as progress:
        r.run_serial(set(), progress, plan, [TASK])
    rows = read_rows(files.episodes_csv, EPISODE_COLUMNS)
    assert [(x["episode"], x["success"], x["steps"], x["error_type"], x["error"]) for x in rows] == [
        ("0", "0", "0", "OSError", "no EGL display"), ("1", "0", "0", "OSError", "no EGL display")]


def test_the_policy_warms_up_once_before_the_first_pending_episode_and_not_when_all_are_done(tmp_path):
    from vlabench.records.files import RunFiles
    from vlabench.run.progress import RunProgress

    class WarmPolicy(ChunkPolicy):
        def warm_up(self):
            self.acted.append("warm")

    class OneStepSuite(Suite):
        def make_env(self, task, needs):
            return CountingEnv(done_at=1)

    plan = {0: [EpisodeSpec(0, i, i, 7) for i in range(2)]}
    for done, expect in ((set(), ["warm", 0, 0]), ({(0, 0), (0, 1)}, [])):
        (tmp_path / str(len(done))).mkdir()
        files = RunFiles(tmp_path / str(len(done)))
        files.open()
        pol = WarmPolicy(1)
        r = runner(pol)
        r.suite, r.files = OneStepSuite(5), files
        with RunProgress(2, len(done), quiet=True, title="t") as progress:
            r.run_serial(done, progress, plan, [TASK])
        assert pol.acted == expect
