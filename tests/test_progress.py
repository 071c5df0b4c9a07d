"""The progress display: every step of the running episode reaches it (in-process and from
environment workers), its slot lines advance within an episode, quiet mode stays one line per
task, and the ETA is hand-worked."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlabench.launch.compose import compose
from vlabench.run import progress as progress_mod
from vlabench.run import runner as runner_mod
from vlabench.run.progress import RunProgress, clock, eta_s
from vlabench.run.runner import run_from_config


class Recording(RunProgress):
    """The real display, recording what the run tells it: (kind, slot, value) tuples."""

    seen: list[tuple] = []

    def episode_start(self, slot: int, label: str, max_steps: int) -> None:
        Recording.seen.append(("start", slot, max_steps))
        super().episode_start(slot, label, max_steps)

    def step(self, slot: int, steps: int) -> None:
        Recording.seen.append(("step", slot, steps))
        super().step(slot, steps)

    def episode_done(self, success: bool, label: str, slot: int = 0) -> None:
        Recording.seen.append(("done", slot, bool(success)))
        super().episode_done(success, label, slot)


@pytest.fixture
def recording(monkeypatch):
    Recording.seen = []
    monkeypatch.setattr(runner_mod, "RunProgress", Recording)
    return Recording.seen


def run(out: Path, *extra: str) -> None:
    run_from_config(compose(["model=test-zero", "suite=test-fast", f"run.output_dir={out}",
                             "run.name=r", *extra]))


def test_every_step_of_the_running_episode_reaches_the_progress_display(tmp_path, recording):
    # task 0: episode 0 succeeds at step 2 (0 % 5 == 0), episode 1 runs to the 30-step limit
    run(tmp_path, "suite.tasks=[0]", "run.episodes_per_task=2", "suite.max_steps=30",
        "suite.success_every=5")
    assert recording == ([("start", 0, 30), ("step", 0, 1), ("step", 0, 2), ("done", 0, True),
                          ("start", 0, 30)] + [("step", 0, s) for s in range(1, 31)]
                         + [("done", 0, False)])


def test_quiet_mode_prints_one_line_per_task_and_gets_no_steps(tmp_path, recording, capsys):
    run(tmp_path, "run.quiet=true")
    assert not [s for s in recording if s[0] == "step"]
    err = capsys.readouterr().err
    assert [ln.split(":")[0] for ln in err.splitlines() if ln.startswith("[vlabench] test-fast task")] == [
        "[vlabench] test-fast task 0", "[vlabench] test-fast task 1"]


def test_environment_workers_report_steps_of_their_episodes(tmp_path, recording):
    run(tmp_path, "run.env_workers=2", "suite.max_steps=6", "suite.success_every=100")
    starts = [s for s in recording if s[0] == "start"]
    assert len(starts) == 6 and {s[2] for s in starts} == {6}
    steps = [s for s in recording if s[0] == "step"]
    slots = {s[1] for s in starts}
    # which worker takes which episode is a race (a slow-starting worker may get none)
    assert slots and slots <= {0, 1}
    assert steps and {s[1] for s in steps} <= slots
    assert all(1 <= s[2] <= 6 for s in steps)
    for slot in slots:   # within an episode a slot's count only grows
        mine = [s for s in recording if s[1] == slot and s[0] in ("start", "step")]
        last = 0
        for kind, _, value in mine:
            if kind == "start":
                last = 0
            else:
                assert value > last
                last = value


def test_a_slot_line_shows_the_steps_of_its_episode_and_goes_at_the_end():
    with RunProgress(4, 1, quiet=False, title="m/p/s") as p:
        p.episode_start(0, "task 0 episode 1", 220)
        p.step(0, 120)   # the first step after a start is always drawn
        tasks = {t.description.strip(): t for t in p._bar.tasks}
        assert tasks["task 0 episode 1"].completed == 120
        assert tasks["task 0 episode 1"].total == 220
        assert tasks["episodes"].completed == 1 and tasks["episodes"].total == 4
        p.episode_done(True, "task 0", slot=0)
        assert "SR 100.0%" in p._info()
        p.episode_start(1, "task 1 episode 0", 10)
        p.slot_done(1)   # a worker with nothing left: its line goes at once
        assert [t.description.strip() for t in p._bar.tasks] == ["episodes", "task 0 episode 1"]
        bar = p._bar
    assert [t.description for t in bar.tasks] == ["episodes"]


def test_eta_counts_running_episodes_by_their_step_fraction():
    # 10 s for one finished episode and half of another: 1.5 units; 4 left, 0.5 of them done
    assert eta_s(10.0, 1, [0.5], 4) == pytest.approx(10.0 / 1.5 * 3.5)
    assert eta_s(10.0, 0, [], 4) is None
    assert eta_s(progress_mod.ETA_AFTER_S / 2, 1, [], 4) is None
    assert clock(3725.2) == "1:02:05" and clock(None) == "-:--:--"
