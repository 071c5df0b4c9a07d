"""Progress before and around episodes: the start-up says what it is doing, the elapsed clock
ticks while nothing steps (a reset), and a resumed run says what earlier invocations finished
and how many succeeded."""

from __future__ import annotations

from vlabench.run import progress as progress_mod
from vlabench.run.progress import RunProgress, StartupStatus, earlier_successes


def test_earlier_successes_counts_the_planned_recorded_successes(tmp_path):
    f = tmp_path / "episodes.csv"
    f.write_text("task_id,episode,success\n0,0,1\n0,1,0\n1,0,1\n2,0,1\n")
    assert earlier_successes(f, {(0, 0), (0, 1), (1, 0)}) == 2
    assert earlier_successes(tmp_path / "none.csv", {(0, 0)}) == 0


def test_a_resumed_run_says_what_was_done_and_its_success(capsys):
    with RunProgress(4, 1, True, "m/p/s", already_successes=0):
        pass
    assert "m/p/s: resuming: 1/4 episodes already done (SR 0/1)" in capsys.readouterr().err
    with RunProgress(4, 0, True, "m/p/s"):
        pass
    err = capsys.readouterr().err
    assert "resuming" not in err and "0/4 episodes already done" in err


def test_the_elapsed_clock_ticks_without_steps(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: now[0])
    with RunProgress(3, 0, False, "m/p/s") as p:
        column = p._bar.columns[-1]
        task = p._bar.tasks[0]
        first = str(column.render(task))
        now[0] += 65.0   # a long reset: no step, no episode done
        second = str(column.render(task))
    assert "elapsed 0:00:00" in first and "elapsed 0:01:05" in second


def test_startup_phases_tick_on_a_terminal_and_print_nothing_elsewhere(monkeypatch, capsys):
    with StartupStatus(False, "m/p/s") as status:   # pytest's stderr is no terminal
        status.phase("loading the model (openvla-oft-tiny)")
    assert capsys.readouterr().err == ""   # a start-up error stays the one line on stderr
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: True, raising=False)
    with StartupStatus(False, "m/p/s") as status:
        status.phase("loading the model (openvla-oft-tiny)")
        task = status._bar.tasks[0]
        assert task.description == "m/p/s: loading the model (openvla-oft-tiny)"
        assert "TimeElapsedColumn" in {type(c).__name__ for c in status._bar.columns}
